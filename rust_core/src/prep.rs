//! The prep stages. Each is one call: a job (config section + paths) in, stats out.
//! Inputs stream through bounded batches: a reader thread reads raw records, rayon
//! decodes, filters and tokenizes a batch in parallel, and the results are appended
//! to on-disk pools in input order; outputs are then written from the pools in a
//! seeded order. Same job, same bytes.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::bridge::{check_template, min_pair_distance, order_with, order_without, render, Unit};
use crate::chunk::chunk;
use crate::error::{Error, IoContext, Result};
use crate::megatron::{IndexedDatasetWriter, TokenDtype};
use crate::pool::{Pool, PoolWriter};
use crate::readers::{decode_doc, decode_pair, read_docs, read_pairs, DocFormat, PairFormat, Raw};
use crate::script::{add_removed, removed_by_name, Filtered, Removed, ScriptFilter};
use crate::tables::{ChunkWriter, ProvenanceRow, ProvenanceWriter};
use crate::tokenize::{TextTokenizer, TokenizerImpl};

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
    pub mono_per_parallel: f64,
    pub budget_tokens: Option<u64>,
    pub shortage: Shortage,
    pub engine: Engine,
    pub out_dir: PathBuf,
}

#[derive(Debug, Default, Serialize)]
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
    pub outputs: Vec<OutputStats>,
    pub tokenizer: TokenizerStats,
    pub seconds: f64,
}

/// Reasons a record could not be decoded, for the skip counters.
fn skip_reason(e: &Error) -> String {
    let msg = match e {
        Error::Input { message, .. } => message.as_str(),
        other => return other.to_string(),
    };
    for reason in ["invalid UTF-8", "malformed JSON", "not an object", "missing text field", "is not a string", "null text", "tab-separated"] {
        if msg.contains(reason) {
            return reason.replace(' ', "_").replace('-', "_").to_lowercase();
        }
    }
    msg.to_owned()
}

/// Runs `read` on a reader thread and `consume` on this one, one bounded batch in
/// flight; `consume` returning `false` stops the reader.
fn stream(
    read: impl FnOnce(&mut dyn FnMut(Vec<Raw>) -> Result<bool>) -> Result<()> + Send,
    mut consume: impl FnMut(Vec<Raw>) -> Result<bool>,
) -> Result<()> {
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<Raw>>(1);
    std::thread::scope(|s| {
        let reader = s.spawn(move || read(&mut |batch| Ok(tx.send(batch).is_ok())));
        let mut result = Ok(());
        while let Ok(batch) = rx.recv() {
            match consume(batch) {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        drop(rx);
        let read_result = reader.join().expect("reader thread panicked");
        result.and(read_result)
    })
}

struct Recorder {
    skips: Option<std::io::BufWriter<std::fs::File>>,
    path: PathBuf,
}

impl Recorder {
    fn new(out_dir: &Path) -> Self {
        Recorder { skips: None, path: out_dir.join("skipped.jsonl") }
    }
    /// Records a skipped record, one JSON line each, in `skipped.jsonl`.
    fn skip(&mut self, stats: &mut InputStats, e: &Error) -> Result<()> {
        use std::io::Write;
        *stats.skipped.entry(skip_reason(e)).or_default() += 1;
        if self.skips.is_none() {
            let f = std::fs::File::create(&self.path).at(&self.path)?;
            self.skips = Some(std::io::BufWriter::new(f));
        }
        let line = serde_json::json!({ "error": e.to_string() });
        writeln!(self.skips.as_mut().unwrap(), "{line}").at(&self.path)
    }
    fn finish(self) -> Result<()> {
        use std::io::Write;
        if let Some(mut w) = self.skips {
            w.flush().at(&self.path)?;
        }
        Ok(())
    }
}

fn drop_reason(f: &Filtered, side: &str) -> Option<String> {
    match f {
        Filtered::Kept { .. } => None,
        Filtered::Empty { .. } => Some(format!("{side}empty_after_filter")),
        Filtered::TooShort { .. } => Some(format!("{side}too_short")),
    }
}

fn removed_of(f: &Filtered) -> &Removed {
    match f {
        Filtered::Kept { removed, .. } | Filtered::Empty { removed } | Filtered::TooShort { removed } => removed,
    }
}

fn merge_removed(stats: &mut InputStats, removed: &Removed) {
    for (name, n) in removed_by_name(removed) {
        *stats.chars_removed_by_script.entry(name).or_default() += n;
    }
}

enum Outcome<T> {
    Blank,
    Skip(Error),
    Drop(String, Removed),
    Keep(T, Removed),
}

/// Counts blank lines, skips and drops; hands back what is kept. A skip is allowed
/// only for input errors under `on_error = "skip"`; anything else stops the stage.
fn settle<T>(outcome: Outcome<T>, stats: &mut InputStats, on_error: OnError, rec: &mut Recorder) -> Result<Option<(T, Removed)>> {
    match outcome {
        Outcome::Blank => stats.blank_lines += 1,
        Outcome::Skip(e) if on_error == OnError::Skip && matches!(e, Error::Input { .. }) => rec.skip(stats, &e)?,
        Outcome::Skip(e) => return Err(e),
        Outcome::Drop(reason, removed) => {
            *stats.dropped.entry(reason).or_default() += 1;
            merge_removed(stats, &removed);
        }
        Outcome::Keep(kept, removed) => return Ok(Some((kept, removed))),
    }
    Ok(None)
}

fn progress(enabled: bool, label: &str) -> ProgressBar {
    if !enabled {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new_spinner();
    bar.set_style(ProgressStyle::with_template("{spinner} {prefix} {msg} [{elapsed}]").unwrap());
    bar.set_prefix(label.to_owned());
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    bar
}

fn thread_pool(threads: usize) -> Result<rayon::ThreadPool> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| Error::config("prep.threads", e.to_string()))
}

fn tokenizer_stats(tok: &TextTokenizer) -> TokenizerStats {
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

/// Reads, filters and tokenizes documents into a pool until `budget` tokens (EOD
/// included) are in it, or the inputs end.
fn pool_docs(
    src: &DocSource,
    filter: &ScriptFilter,
    tok: &TextTokenizer,
    engine: &Engine,
    budget: Option<u64>,
    work: &Path,
    name: &str,
    rec: &mut Recorder,
    bar: &ProgressBar,
) -> Result<(Pool, InputStats)> {
    let mut stats = InputStats::default();
    let mut pool = PoolWriter::create(work, name)?;
    let mut tokens = 0u64;
    stream(
        |sink| read_docs(&src.paths, &src.format, engine.batch_bytes, sink),
        |batch| {
            stats.records_read += batch.len() as u64;
            let results: Vec<(u32, u64, Outcome<(String, Vec<u32>)>)> = batch
                .into_par_iter()
                .map(|raw| {
                    let (file, line) = (raw.file, raw.line);
                    let outcome = match decode_doc(raw, &src.format, &src.paths[file as usize]) {
                        Ok(None) => Outcome::Blank,
                        Err(e) => Outcome::Skip(e),
                        Ok(Some(text)) => match filter.filter(&text) {
                            Filtered::Kept { text, removed } => {
                                let mut ids = Vec::new();
                                match tok.encode_into(&text, &mut ids) {
                                    Ok(()) => Outcome::Keep((text, ids), removed),
                                    Err(e) => Outcome::Skip(e),
                                }
                            }
                            f => Outcome::Drop(drop_reason(&f, "").unwrap(), *removed_of(&f)),
                        },
                    };
                    (file, line, outcome)
                })
                .collect();
            for (file, line, outcome) in results {
                let Some(((text, ids), removed)) = settle(outcome, &mut stats, engine.on_error, rec)? else { continue };
                if budget.is_some_and(|b| tokens >= b) {
                    stats.stopped_at_budget = true;
                    return Ok(false);
                }
                merge_removed(&mut stats, &removed);
                pool.push(&text, &ids, file, line)?;
                tokens += ids.len() as u64 + 1;
                stats.documents_kept += 1;
            }
            bar.set_message(format!("{name}: {} documents, {tokens} tokens", stats.documents_kept));
            Ok(!budget.is_some_and(|b| tokens >= b))
        },
    )?;
    Ok((pool.finish()?, stats))
}

struct PairPools {
    en: Pool,
    xx: Pool,
    bridged: Pool,
}

#[allow(clippy::too_many_arguments)]
fn pool_pairs(
    job: &BilingualJob,
    en_filter: &ScriptFilter,
    xx_filter: &ScriptFilter,
    tok: &TextTokenizer,
    budget: Option<u64>,
    work: &Path,
    rec: &mut Recorder,
    bar: &ProgressBar,
) -> Result<(PairPools, InputStats)> {
    let engine = &job.engine;
    let mut stats = InputStats::default();
    let (mut en, mut xx, mut br) =
        (PoolWriter::create(work, "pair_en")?, PoolWriter::create(work, "pair_xx")?, PoolWriter::create(work, "bridged")?);
    let mut tokens = 0u64;
    type Kept = [(String, Vec<u32>); 3];
    stream(
        |sink| read_pairs(&job.pairs.paths, &job.pairs.format, engine.batch_bytes, sink),
        |batch| {
            stats.records_read += batch.len() as u64;
            let results: Vec<(u32, u64, Outcome<Kept>)> = batch
                .into_par_iter()
                .map(|raw| {
                    let (file, line) = (raw.file, raw.line);
                    let outcome = (|| -> Outcome<Kept> {
                        let (e, x) = match decode_pair(raw, &job.pairs.format, &job.pairs.paths[file as usize]) {
                            Ok(None) => return Outcome::Blank,
                            Err(e) => return Outcome::Skip(e),
                            Ok(Some(p)) => p,
                        };
                        let (fe, fx) = (en_filter.filter(&e), xx_filter.filter(&x));
                        let mut removed = *removed_of(&fe);
                        add_removed(&mut removed, removed_of(&fx));
                        let reason = drop_reason(&fe, "en_").or_else(|| drop_reason(&fx, "xx_"));
                        let (Filtered::Kept { text: e, .. }, Filtered::Kept { text: x, .. }) = (fe, fx) else {
                            return Outcome::Drop(reason.unwrap(), removed);
                        };
                        let b = render(&job.template, &e, &x);
                        let mut ids = [Vec::new(), Vec::new(), Vec::new()];
                        for (text, out) in [&e, &x, &b].into_iter().zip(ids.iter_mut()) {
                            if let Err(err) = tok.encode_into(text, out) {
                                return Outcome::Skip(err);
                            }
                        }
                        let [ie, ix, ib] = ids;
                        Outcome::Keep([(e, ie), (x, ix), (b, ib)], removed)
                    })();
                    (file, line, outcome)
                })
                .collect();
            for (file, line, outcome) in results {
                let Some(([(e, ie), (x, ix), (b, ib)], removed)) = settle(outcome, &mut stats, engine.on_error, rec)?
                else {
                    continue;
                };
                if budget.is_some_and(|bud| tokens >= bud) {
                    stats.stopped_at_budget = true;
                    return Ok(false);
                }
                merge_removed(&mut stats, &removed);
                en.push(&e, &ie, file, line)?;
                xx.push(&x, &ix, file, line)?;
                br.push(&b, &ib, file, line)?;
                tokens += ie.len() as u64 + ix.len() as u64 + 2;
                stats.documents_kept += 1;
            }
            bar.set_message(format!("pairs: {} pairs, {tokens} tokens", stats.documents_kept));
            Ok(!budget.is_some_and(|b| tokens >= b))
        },
    )?;
    Ok((PairPools { en: en.finish()?, xx: xx.finish()?, bridged: br.finish()? }, stats))
}

/// Writes one output: `.bin/.idx`, provenance and chunks, in `order`.
#[allow(clippy::too_many_arguments)]
fn write_output(
    dir: &Path,
    name: &str,
    order: &[Unit],
    mono: &Pool,
    pairs: Option<&PairPools>,
    sources: (Vec<String>, Vec<String>),
    language: &str,
    tok: &TextTokenizer,
    engine: &Engine,
) -> Result<OutputStats> {
    std::fs::create_dir_all(dir).at(dir)?;
    let (bin, idx) = (dir.join(format!("{name}.bin")), dir.join(format!("{name}.idx")));
    let prov_path = dir.join(format!("{name}.provenance.parquet"));
    let chunk_path = dir.join(format!("{name}.chunks.parquet"));
    let mut w = IndexedDatasetWriter::create(&bin, TokenDtype::for_vocab(tok.vocab_size))?;
    let (mono_sources, pair_sources) = sources;
    let n_mono = mono_sources.len() as u32;
    let mut prov = ProvenanceWriter::create(&prov_path, mono_sources.into_iter().chain(pair_sources).collect())?;
    let mut chunks = ChunkWriter::create(&chunk_path)?;
    let mut st = OutputStats { name: name.to_owned(), ..Default::default() };
    let mut ids = Vec::new();
    let bridged_lang = format!("en+{language}");
    for (doc_id, unit) in order.iter().enumerate() {
        let (pool, i, kind, lang) = match *unit {
            Unit::Mono(i) => (mono, i, "mono", language),
            Unit::Bridged(i) => (&pairs.unwrap().bridged, i, "bridged", bridged_lang.as_str()),
            Unit::En(i) => (&pairs.unwrap().en, i, "pair_en", "en"),
            Unit::Xx(i) => (&pairs.unwrap().xx, i, "pair_xx", language),
        };
        let i = i as usize;
        ids.clear();
        pool.tokens(i, &mut ids)?;
        ids.push(tok.eod);
        w.add_document(&ids)?;
        let n = ids.len() as u64;
        st.tokens += n;
        if kind == "mono" {
            st.mono_tokens += n;
        } else {
            st.parallel_tokens += n;
        }
        let e = pool.entries[i];
        let is_pair = kind != "mono";
        prov.push(ProvenanceRow {
            kind,
            source: if is_pair { n_mono + e.file } else { e.file },
            line: e.line,
            pair_id: is_pair.then_some(i as i64),
            tokens: n as u32,
        })?;
        for c in chunk(&pool.text(i)?, engine.chunk_chars) {
            chunks.push(doc_id as u64, lang, c)?;
        }
    }
    st.documents = w.documents() as u64;
    st.chunks = chunks.chunks();
    w.finish(&idx)?;
    prov.finish()?;
    chunks.finish()?;
    st.files = [bin, idx, prov_path, chunk_path].iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
    Ok(st)
}

fn paths_as_strings(paths: &[PathBuf]) -> Vec<String> {
    paths.iter().map(|p| p.display().to_string()).collect()
}

pub fn run_monolingual(job: &MonolingualJob) -> Result<StageStats> {
    let start = Instant::now();
    let engine = &job.engine;
    let filter = ScriptFilter::new(&job.filter.keep_scripts, job.filter.min_chars, "filter.keep_scripts")?;
    let tok = TextTokenizer::load(&engine.tokenizer.path, &engine.tokenizer.eod, engine.tokenizer.implementation)?;
    std::fs::create_dir_all(&job.out_dir).at(&job.out_dir)?;
    let work = tempfile_dir(&job.out_dir)?;
    let mut rec = Recorder::new(&job.out_dir);
    let bar = progress(engine.progress, &job.name);
    thread_pool(engine.threads)?.install(|| {
        let (pool, stats) = pool_docs(&job.source, &filter, &tok, engine, job.budget_tokens, &work, &job.name, &mut rec, &bar)?;
        if pool.entries.is_empty() {
            return Err(Error::config("inputs", format!("{}: no document survived filtering", job.name)));
        }
        let mut order: Vec<Unit> = (0..pool.entries.len() as u32).map(Unit::Mono).collect();
        crate::bridge::Rng::new(engine.seed).shuffle(&mut order);
        bar.set_message(format!("{}: writing {} documents", job.name, order.len()));
        let mut out = write_output(
            &job.out_dir,
            &job.name,
            &order,
            &pool,
            None,
            (paths_as_strings(&job.source.paths), vec![]),
            &job.language,
            &tok,
            engine,
        )?;
        out.setting = "monolingual".into();
        rec.finish()?;
        std::fs::remove_dir_all(&work).at(&work)?;
        bar.finish_and_clear();
        Ok(StageStats {
            language: job.language.clone(),
            inputs: BTreeMap::from([("documents".to_owned(), stats)]),
            selection: None,
            outputs: vec![out],
            tokenizer: tokenizer_stats(&tok),
            seconds: start.elapsed().as_secs_f64(),
        })
    })
}

fn tempfile_dir(out_dir: &Path) -> Result<PathBuf> {
    let work = out_dir.join(".work");
    if work.exists() {
        std::fs::remove_dir_all(&work).at(&work)?;
    }
    std::fs::create_dir_all(&work).at(&work)?;
    Ok(work)
}

/// Token count of pool entry `i` with its EOD.
fn doc_tokens(pool: &Pool, i: usize) -> u64 {
    pool.entries[i].tok_len as u64 + 1
}

pub fn run_bilingual(job: &BilingualJob) -> Result<StageStats> {
    let start = Instant::now();
    let engine = &job.engine;
    let lang = &job.language;
    check_template(&job.template, &format!("prep.languages.{lang}.template"))?;
    if !(job.mono_per_parallel > 0.0 && job.mono_per_parallel.is_finite()) {
        return Err(Error::config(format!("prep.languages.{lang}.mono_per_parallel"), "must be a positive number"));
    }
    let en_filter = ScriptFilter::new(&job.en_filter.keep_scripts, job.en_filter.min_chars, "prep.english.keep_scripts")?;
    let xx_filter = ScriptFilter::new(
        &job.xx_filter.keep_scripts,
        job.xx_filter.min_chars,
        &format!("prep.languages.{lang}.keep_scripts"),
    )?;
    let tok = TextTokenizer::load(&engine.tokenizer.path, &engine.tokenizer.eod, engine.tokenizer.implementation)?;
    std::fs::create_dir_all(&job.out_dir).at(&job.out_dir)?;
    let work = tempfile_dir(&job.out_dir)?;
    let mut rec = Recorder::new(&job.out_dir);
    let bar = progress(engine.progress, lang);
    let r = job.mono_per_parallel;
    thread_pool(engine.threads)?.install(|| {
        let par_budget = job.budget_tokens.map(|b| (b as f64 / (1.0 + r)).ceil() as u64);
        let (pairs, pair_stats) = pool_pairs(job, &en_filter, &xx_filter, &tok, par_budget, &work, &mut rec, &bar)?;
        let pair_tokens = |k: usize| -> u64 { (0..k).map(|i| doc_tokens(&pairs.en, i) + doc_tokens(&pairs.xx, i)).sum() };
        let mut n_pairs = pairs.en.entries.len();
        let mut par_tokens = pair_tokens(n_pairs);
        let mut shrunk = false;
        if par_budget.is_some_and(|b| par_tokens < b) {
            if job.shortage == Shortage::Error {
                return Err(Error::config(
                    format!("prep.languages.{lang}.budget_tokens"),
                    format!("parallel data holds {par_tokens} tokens after filtering; the budget needs {}", par_budget.unwrap()),
                ));
            }
            shrunk = true;
        }
        let mono_target = (par_tokens as f64 * r).ceil() as u64;
        let (mono, mono_stats) =
            pool_docs(&job.mono, &xx_filter, &tok, engine, Some(mono_target), &work, "mono", &mut rec, &bar)?;
        let mono_avail: u64 = (0..mono.entries.len()).map(|i| doc_tokens(&mono, i)).sum();
        if mono_avail < mono_target {
            if job.shortage == Shortage::Error {
                return Err(Error::config(
                    format!("prep.languages.{lang}.budget_tokens"),
                    format!("monolingual data holds {mono_avail} tokens after filtering; the ratio needs {mono_target}"),
                ));
            }
            shrunk = true;
            while n_pairs > 0 && par_tokens as f64 * r > mono_avail as f64 {
                n_pairs -= 1;
                par_tokens -= doc_tokens(&pairs.en, n_pairs) + doc_tokens(&pairs.xx, n_pairs);
            }
        }
        let target = (par_tokens as f64 * r).ceil() as u64;
        let mut n_mono = 0;
        let mut mono_tokens = 0;
        while n_mono < mono.entries.len() && mono_tokens < target {
            mono_tokens += doc_tokens(&mono, n_mono);
            n_mono += 1;
        }
        if n_pairs == 0 || n_mono == 0 {
            return Err(Error::config(format!("prep.languages.{lang}"), "no pairs or no monolingual documents left to mix"));
        }
        let selection = Selection {
            policy: "prefix in input order, no repetition: pairs until the parallel share of the budget, then \
                     monolingual documents until mono_per_parallel x the parallel tokens (tokens include EOD; \
                     parallel tokens are those of the two halves as separate documents)"
                .into(),
            budget_tokens: job.budget_tokens,
            pairs: n_pairs as u64,
            mono_documents: n_mono as u64,
            parallel_tokens: par_tokens,
            mono_tokens,
            ratio_mono_per_parallel: mono_tokens as f64 / par_tokens as f64,
            shrunk,
        };
        let sources = || (paths_as_strings(&job.mono.paths), paths_as_strings(&job.pairs.paths));
        let mut outputs = Vec::new();
        for setting in ["with", "without"] {
            bar.set_message(format!("{lang}: writing the {setting}-bridges output"));
            let order = if setting == "with" {
                order_with(n_mono, n_pairs, engine.seed)
            } else {
                order_without(n_mono, n_pairs, engine.seed)
            };
            let name = format!("{lang}_{setting}");
            let mut out =
                write_output(&job.out_dir.join(setting), &name, &order, &mono, Some(&pairs), sources(), lang, &tok, engine)?;
            out.setting = setting.into();
            out.bridge_tokens = out.parallel_tokens as i64 - par_tokens as i64;
            out.ratio_mono_per_parallel = Some(out.mono_tokens as f64 / out.parallel_tokens as f64);
            out.min_pair_distance = min_pair_distance(&order, n_pairs).filter(|_| setting == "without").map(|d| d as u64);
            outputs.push(out);
        }
        rec.finish()?;
        std::fs::remove_dir_all(&work).at(&work)?;
        bar.finish_and_clear();
        Ok(StageStats {
            language: lang.clone(),
            inputs: BTreeMap::from([("monolingual".to_owned(), mono_stats), ("parallel".to_owned(), pair_stats)]),
            selection: Some(selection),
            outputs,
            tokenizer: tokenizer_stats(&tok),
            seconds: start.elapsed().as_secs_f64(),
        })
    })
}

/// SHA-256 of each file, in parallel.
pub fn hash_files(paths: &[PathBuf]) -> Result<Vec<String>> {
    use sha2::{Digest, Sha256};
    use std::io::Read;
    paths
        .par_iter()
        .map(|p| {
            let mut f = std::fs::File::open(p).at(p)?;
            let mut h = Sha256::new();
            let mut buf = vec![0u8; 1 << 20];
            loop {
                let n = f.read(&mut buf).at(p)?;
                if n == 0 {
                    break;
                }
                h.update(&buf[..n]);
            }
            Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
        })
        .collect()
}
