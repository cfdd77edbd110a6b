//! What a prep stage reports (`stats.json` beside its outputs): per input, per output,
//! the selection of pairs and monolingual text, and the tokenizer.
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::megatron::TokenDtype;
use crate::script::{removed_by_name, Removed};
use crate::tokenize::TextTokenizer;

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct InputStats {
    pub records_read: u64,
    pub blank_lines: u64,
    pub documents_kept: u64,
    pub dropped: BTreeMap<String, u64>,
    pub skipped: BTreeMap<String, u64>,
    pub chars_removed_by_script: BTreeMap<String, u64>,
    /// Reading stopped once the budget was met; later records were not read.
    pub stopped_at_budget: bool,
}

#[derive(Debug, Serialize)]
pub struct CodeSwitchStats {
    pub lexicon: String,
    pub lexicon_entries: u64,
    pub rate: f64,
    /// Words of both halves found in the lexicon, and those replaced.
    pub words_listed: u64,
    pub words_switched: u64,
}

#[derive(Debug, Default, Serialize)]
pub struct OutputStats {
    pub name: String,
    pub setting: String,
    pub documents: u64,
    pub tokens: u64,
    pub mono_tokens: u64,
    pub parallel_tokens: u64,
    /// Template tokens a bridged output holds beyond its pairs' own tokens.
    pub bridge_tokens: i64,
    pub ratio_mono_per_parallel: Option<f64>,
    pub min_pair_distance: Option<u64>,
    pub chunks: u64,
    pub files: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct Selection {
    pub policy: String,
    pub budget_tokens: Option<u64>,
    pub pairs: u64,
    pub mono_documents: u64,
    pub parallel_tokens: u64,
    pub mono_tokens: u64,
    pub ratio_mono_per_parallel: f64,
    pub shrunk: bool,
}

#[derive(Debug, Serialize)]
pub struct TokenizerStats {
    pub path: String,
    pub implementation: String,
    pub vocab_size: usize,
    pub eod_id: u32,
    pub dtype: String,
}

#[derive(Debug, Serialize)]
pub struct StageStats {
    pub language: String,
    pub inputs: BTreeMap<String, InputStats>,
    pub selection: Option<Selection>,
    /// What code-switching did to the selected pairs' bridged documents.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub codeswitch: Option<CodeSwitchStats>,
    pub outputs: Vec<OutputStats>,
    pub tokenizer: TokenizerStats,
    pub seconds: f64,
}

impl InputStats {
    /// Adds one document's removed characters to the per-script counts.
    /// Adds another task's counts (a unit built by several tasks).
    pub fn absorb(&mut self, o: InputStats) {
        self.records_read += o.records_read;
        self.blank_lines += o.blank_lines;
        self.documents_kept += o.documents_kept;
        self.stopped_at_budget |= o.stopped_at_budget;
        for (mine, theirs) in [(&mut self.dropped, o.dropped), (&mut self.skipped, o.skipped), (&mut self.chars_removed_by_script, o.chars_removed_by_script)] {
            for (k, v) in theirs {
                *mine.entry(k).or_default() += v;
            }
        }
    }

    pub fn add_removed(&mut self, removed: &Removed) {
        for (name, n) in removed_by_name(removed) {
            *self.chars_removed_by_script.entry(name).or_default() += n;
        }
    }
}

pub fn tokenizer_stats(tok: &TextTokenizer) -> TokenizerStats {
    TokenizerStats {
        path: tok.path.display().to_string(),
        implementation: if tok.uses_fast_path() { "fast" } else { "reference" }.into(),
        vocab_size: tok.vocab_size,
        eod_id: tok.eod,
        dtype: match TokenDtype::for_vocab(tok.vocab_size) {
            TokenDtype::U16 => "uint16",
            TokenDtype::I32 => "int32",
        }
        .into(),
    }
}
