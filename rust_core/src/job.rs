//! The jobs Python hands the prep engine: serde structs that reject unknown fields.
//! `xcult/corpus/jobs.py` builds them field for field, and a test round-trips every job
//! of the shipped configs through `roundtrip_job`.
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::codeswitch::CodeSwitchSpec;
use crate::readers::{DocFormat, PairFormat, Shard};
use crate::tokenize::TokenizerImpl;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenizerSpec {
    pub path: PathBuf,
    pub eod: String,
    pub implementation: TokenizerImpl,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilterSpec {
    pub keep_scripts: Vec<String>,
    pub min_chars: usize,
    /// Monolingual documents only: the corpus's language then the languages to tell it
    /// apart from (ISO 639-1, `langid.rs`); empty = no language identification.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub language_id: Vec<String>,
    /// Monolingual documents only: drop one whose filtered text equals a kept one's
    /// (`exact`), or is a near copy of one (`near`, MinHash LSH: `minhash.rs`).
    #[serde(default, skip_serializing_if = "Dedup::is_off")]
    pub dedup: Dedup,
}

#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dedup {
    #[default]
    Off,
    Exact,
    Near,
}

impl Dedup {
    fn is_off(&self) -> bool {
        *self == Dedup::Off
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnError {
    Error,
    Skip,
}

/// What to do when a source holds fewer tokens than the budget and ratio ask for.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Shortage {
    Error,
    /// Use what there is, keeping the ratio (the output comes out smaller).
    Shrink,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DocSource {
    pub paths: Vec<PathBuf>,
    pub format: DocFormat,
    /// Read only this task's share of the inputs (a unit built by several tasks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<Shard>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PairSource {
    pub paths: Vec<PathBuf>,
    pub format: PairFormat,
}

/// Settings every job shares.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Engine {
    pub tokenizer: TokenizerSpec,
    pub seed: u64,
    pub chunk_chars: usize,
    pub on_error: OnError,
    pub batch_bytes: usize,
    /// What a stage's pools (its documents' text and ids between reading and writing)
    /// may hold in memory; beyond it they spill to files in the output's work directory.
    pub pool_memory_bytes: u64,
    /// 0: all cores.
    pub threads: usize,
    pub progress: bool,
}

/// A monolingual corpus (the English pretraining corpus): filter, tokenize, shuffle.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MonolingualJob {
    pub name: String,
    pub language: String,
    pub source: DocSource,
    pub filter: FilterSpec,
    pub budget_tokens: Option<u64>,
    pub engine: Engine,
    pub out_dir: PathBuf,
    /// The merge of a unit built by several tasks: their pool directories, in task
    /// order, instead of reading `source` (whose paths still name the inputs).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pools: Vec<PathBuf>,
}

/// A continued-pretraining language: monolingual text plus parallel pairs mixed at
/// `mono_per_parallel` by tokens, written once with and once without bridges.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BilingualJob {
    pub language: String,
    pub mono: DocSource,
    pub pairs: PairSource,
    pub en_filter: FilterSpec,
    pub xx_filter: FilterSpec,
    pub template: String,
    /// Code-switch each half of a bridged pair through a lexicon (`codeswitch.rs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub codeswitch: Option<CodeSwitchSpec>,
    pub mono_per_parallel: f64,
    pub budget_tokens: Option<u64>,
    pub shortage: Shortage,
    pub engine: Engine,
    pub out_dir: PathBuf,
}
