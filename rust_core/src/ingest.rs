//! Reading a job's inputs into on-disk pools: a reader thread reads raw records, rayon
//! decodes, filters and tokenizes a batch in parallel, and the results are appended in
//! input order. Blank lines, skipped records (`on_error = "skip"`, with their reason)
//! and dropped texts (by filter reason) are counted in `InputStats`.
use std::path::{Path, PathBuf};

use indicatif::ProgressBar;
use rayon::prelude::*;

use crate::bridge::render;
use crate::codeswitch::{Lexicon, Switched};
use crate::error::{Error, IoContext, Result};
use crate::job::{BilingualJob, Dedup, DocSource, Engine, FilterSpec, OnError};
use crate::minhash::{self, Lsh};
use crate::langid::LanguageId;
use crate::pool::{MemoryBudget, Pool, PoolWriter};
use crate::readers::{decode_doc, decode_pair, read_docs, read_pairs, Raw};
use crate::script::{add_removed, Filtered, Removed, ScriptFilter};
use crate::stats::InputStats;
use crate::tokenize::TextTokenizer;

/// Runs `read` on a reader thread; each batch it yields is `process`ed (in parallel,
/// inside) and then `settle`d in input order. Settling a batch (pool writes, counts,
/// dedup) runs beside processing the next, so neither core waits on the serial part; a
/// `settle` returning `false` stops the reader (the batch processed meanwhile is
/// dropped).
fn stream<T: Send>(
    read: impl FnOnce(&mut dyn FnMut(Vec<Raw>) -> Result<bool>) -> Result<()> + Send,
    process: impl Fn(Vec<Raw>) -> T + Sync,
    mut settle: impl FnMut(T) -> Result<bool> + Send,
) -> Result<()> {
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<Raw>>(1);
    std::thread::scope(|s| {
        let reader = s.spawn(move || read(&mut |batch| Ok(tx.send(batch).is_ok())));
        let mut pending: Option<T> = None;
        let mut go_on = Ok(true);
        while let Ok(batch) = rx.recv() {
            let (settled, processed) = match pending.take() {
                Some(done) => rayon::join(|| settle(done), || process(batch)),
                None => (Ok(true), process(batch)),
            };
            go_on = settled;
            if !matches!(go_on, Ok(true)) {
                break;
            }
            pending = Some(processed);
        }
        if let (Ok(true), Some(done)) = (&go_on, pending) {
            go_on = settle(done);
        }
        drop(rx);
        let read_result = reader.join().expect("reader thread panicked");
        go_on.map(|_| ()).and(read_result)
    })
}

pub struct Recorder {
    skips: Option<std::io::BufWriter<std::fs::File>>,
    path: PathBuf,
}

impl Recorder {
    pub fn new(out_dir: &Path) -> Self {
        Recorder { skips: None, path: out_dir.join("skipped.jsonl") }
    }
    /// Records a skipped record, one JSON line each, in `skipped.jsonl`.
    fn skip(&mut self, stats: &mut InputStats, e: &Error) -> Result<()> {
        use std::io::Write;
        let reason = match e {
            Error::Input { kind, .. } => kind.key(),
            _ => unreachable!("only input errors are skipped"),
        };
        *stats.skipped.entry(reason.to_owned()).or_default() += 1;
        if self.skips.is_none() {
            let f = std::fs::File::create(&self.path).at(&self.path)?;
            self.skips = Some(std::io::BufWriter::new(f));
        }
        let line = serde_json::json!({ "error": e.to_string() });
        writeln!(self.skips.as_mut().unwrap(), "{line}").at(&self.path)
    }
    pub fn finish(self) -> Result<()> {
        use std::io::Write;
        if let Some(mut w) = self.skips {
            w.flush().at(&self.path)?;
        }
        Ok(())
    }
}

enum Outcome<T> {
    Blank,
    Skip(Error),
    Drop(String, Removed),
    Keep(T, Removed),
}

/// A processed batch: each record's (file, line) and outcome, in input order.
type Outcomes<T> = Vec<(u32, u64, Outcome<T>)>;

/// Counts blank lines, skips and drops; hands back what is kept. A skip is allowed
/// only for input errors under `on_error = "skip"`; anything else stops the stage.
fn settle<T>(outcome: Outcome<T>, stats: &mut InputStats, on_error: OnError, rec: &mut Recorder) -> Result<Option<(T, Removed)>> {
    match outcome {
        Outcome::Blank => stats.blank_lines += 1,
        Outcome::Skip(e) if on_error == OnError::Skip && matches!(e, Error::Input { .. }) => rec.skip(stats, &e)?,
        Outcome::Skip(e) => return Err(e),
        Outcome::Drop(reason, removed) => {
            *stats.dropped.entry(reason).or_default() += 1;
            stats.add_removed(&removed);
        }
        Outcome::Keep(kept, removed) => return Ok(Some((kept, removed))),
    }
    Ok(None)
}

/// What keeps a monolingual document: its scripts, optionally its language (identified
/// on the raw text, before the script filter removes the evidence, e.g. Japanese kana),
/// and optionally that no equal (or nearly equal) filtered text was kept before it.
/// Drops are counted by reason: the script filter's, `language_<iso>`, `duplicate`,
/// `near_duplicate`.
pub struct DocFilter {
    pub script: ScriptFilter,
    language: Option<LanguageId>,
    dedup: Dedup,
}

/// What identifies a kept text for deduplication.
enum DedupKey {
    None,
    Exact(u128),
    Near(minhash::Bands),
}

/// The texts kept so far, as the deduplication mode sees them.
#[derive(Default)]
struct Seen {
    exact: std::collections::HashSet<u128>,
    near: Lsh,
}

impl Seen {
    /// The drop reason when `key` repeats a kept text; otherwise remembers it.
    fn repeat(&mut self, key: &DedupKey) -> Option<&'static str> {
        match key {
            DedupKey::None => None,
            DedupKey::Exact(k) => (!self.exact.insert(*k)).then_some("duplicate"),
            DedupKey::Near(b) => self.near.seen_or_insert(b).then_some("near_duplicate"),
        }
    }
}

impl DocFilter {
    /// `key`: the config section its errors name (e.g. `prep.languages.mn`).
    pub fn new(spec: &FilterSpec, key: &str) -> Result<Self> {
        Ok(DocFilter {
            script: ScriptFilter::new(&spec.keep_scripts, spec.min_chars, &format!("{key}.keep_scripts"))?,
            language: LanguageId::new(&spec.language_id, &format!("{key}.language_id"))?,
            dedup: spec.dedup,
        })
    }

    fn dedup_key(&self, text: &str) -> DedupKey {
        match self.dedup {
            Dedup::Off => DedupKey::None,
            Dedup::Exact => DedupKey::Exact(text_key(text)),
            Dedup::Near => DedupKey::Near(minhash::bands(text)),
        }
    }
}

/// The identity of a kept text for exact deduplication (SHA-256, first 16 bytes).
fn text_key(text: &str) -> u128 {
    use sha2::{Digest, Sha256};
    u128::from_le_bytes(Sha256::digest(text.as_bytes())[..16].try_into().unwrap())
}

/// Reads, filters and tokenizes documents into a pool until `budget` tokens (EOD
/// included) are in it, or the inputs end. `keep`: the pool stays on disk for a merge.
/// `memory`: what the stage's pools may hold in memory.
#[allow(clippy::too_many_arguments)]
pub fn pool_docs(
    src: &DocSource,
    filter: &DocFilter,
    tok: &TextTokenizer,
    engine: &Engine,
    budget: Option<u64>,
    work: &Path,
    name: &str,
    rec: &mut Recorder,
    bar: &ProgressBar,
    keep: bool,
    memory: &MemoryBudget,
) -> Result<(Pool, InputStats)> {
    let mut stats = InputStats::default();
    let mut pool = PoolWriter::create(work, name, memory)?;
    let mut tokens = 0u64;
    let mut seen = Seen::default();
    stream(
        |sink| read_docs(&src.paths, &src.format, engine.batch_bytes, src.shard, sink),
        |batch| -> Outcomes<(String, Vec<u32>, DedupKey)> {
            batch
                .into_par_iter()
                .map(|raw| {
                    let (file, line) = (raw.file, raw.line);
                    let outcome = match decode_doc(raw, &src.format, &src.paths[file as usize]) {
                        Ok(None) => Outcome::Blank,
                        Err(e) => Outcome::Skip(e),
                        Ok(Some(text)) => match filter.language.as_ref().and_then(|l| l.other_language(&text)) {
                            Some(code) => Outcome::Drop(format!("language_{code}"), [0; 256]),
                            None => match filter.script.filter(&text) {
                                Filtered::Kept { text, removed } => {
                                    let mut ids = Vec::new();
                                    let key = filter.dedup_key(&text);
                                    match tok.encode_into(&text, &mut ids) {
                                        Ok(()) => Outcome::Keep((text, ids, key), removed),
                                        Err(e) => Outcome::Skip(e),
                                    }
                                }
                                f => Outcome::Drop(f.drop_reason("").unwrap(), *f.removed()),
                            },
                        },
                    };
                    (file, line, outcome)
                })
                .collect()
        },
        |results| {
            stats.records_read += results.len() as u64;
            for (file, line, outcome) in results {
                let Some(((text, ids, key), removed)) = settle(outcome, &mut stats, engine.on_error, rec)? else { continue };
                if let Some(reason) = seen.repeat(&key) {
                    *stats.dropped.entry(reason.to_owned()).or_default() += 1;
                    continue;
                }
                if budget.is_some_and(|b| tokens >= b) {
                    stats.stopped_at_budget = true;
                    return Ok(false);
                }
                stats.add_removed(&removed);
                pool.push(&text, &ids, file, line)?;
                tokens += ids.len() as u64 + 1;
                stats.documents_kept += 1;
            }
            bar.set_message(format!("{name}: {} documents, {tokens} tokens", stats.documents_kept));
            // A budget met where a batch ends stops here too (not at the next kept record,
            // which records the filter drops could put at the end of the input).
            if budget.is_some_and(|b| tokens >= b) {
                stats.stopped_at_budget = true;
                return Ok(false);
            }
            Ok(true)
        },
    )?;
    Ok((if keep { pool.finish_to_disk()? } else { pool.finish()? }, stats))
}

pub struct PairPools {
    pub en: Pool,
    pub xx: Pool,
    pub bridged: Pool,
    /// Per pair, in pool order: what code-switching did to its bridged document.
    pub switched: Vec<Switched>,
}

#[allow(clippy::too_many_arguments)]
pub fn pool_pairs(
    job: &BilingualJob,
    en_filter: &ScriptFilter,
    xx_filter: &ScriptFilter,
    tok: &TextTokenizer,
    lexicon: Option<&Lexicon>,
    budget: Option<u64>,
    work: &Path,
    rec: &mut Recorder,
    bar: &ProgressBar,
    memory: &MemoryBudget,
) -> Result<(PairPools, InputStats)> {
    let engine = &job.engine;
    let mut stats = InputStats::default();
    let (mut en, mut xx, mut br) =
        (PoolWriter::create(work, "pair_en", memory)?, PoolWriter::create(work, "pair_xx", memory)?, PoolWriter::create(work, "bridged", memory)?);
    let mut tokens = 0u64;
    let mut switched = Vec::new();
    type Kept = ([(String, Vec<u32>); 3], Switched);
    stream(
        |sink| read_pairs(&job.pairs.paths, &job.pairs.format, engine.batch_bytes, sink),
        |batch| -> Outcomes<Kept> {
            batch
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
                        let mut removed = *fe.removed();
                        add_removed(&mut removed, fx.removed());
                        let reason = fe.drop_reason("en_").or_else(|| fx.drop_reason("xx_"));
                        let (Filtered::Kept { text: e, .. }, Filtered::Kept { text: x, .. }) = (fe, fx) else {
                            return Outcome::Drop(reason.unwrap(), removed);
                        };
                        let (b, n) = match (lexicon, &job.codeswitch) {
                            (Some(lex), Some(cs)) => {
                                let (se, sx, n) = lex.switch_pair(&e, &x, cs.rate, engine.seed, file, line);
                                (render(&job.template, &se, &sx), n)
                            }
                            _ => (render(&job.template, &e, &x), Switched::default()),
                        };
                        let mut ids = [Vec::new(), Vec::new(), Vec::new()];
                        for (text, out) in [&e, &x, &b].into_iter().zip(ids.iter_mut()) {
                            if let Err(err) = tok.encode_into(text, out) {
                                return Outcome::Skip(err);
                            }
                        }
                        let [ie, ix, ib] = ids;
                        Outcome::Keep(([(e, ie), (x, ix), (b, ib)], n), removed)
                    })();
                    (file, line, outcome)
                })
                .collect()
        },
        |results| {
            stats.records_read += results.len() as u64;
            for (file, line, outcome) in results {
                let Some((([(e, ie), (x, ix), (b, ib)], n), removed)) = settle(outcome, &mut stats, engine.on_error, rec)?
                else {
                    continue;
                };
                if budget.is_some_and(|bud| tokens >= bud) {
                    stats.stopped_at_budget = true;
                    return Ok(false);
                }
                stats.add_removed(&removed);
                en.push(&e, &ie, file, line)?;
                xx.push(&x, &ix, file, line)?;
                br.push(&b, &ib, file, line)?;
                switched.push(n);
                tokens += ie.len() as u64 + ix.len() as u64 + 2;
                stats.documents_kept += 1;
            }
            bar.set_message(format!("pairs: {} pairs, {tokens} tokens", stats.documents_kept));
            // A budget met where a batch ends stops here too (not at the next kept record,
            // which records the filter drops could put at the end of the input).
            if budget.is_some_and(|b| tokens >= b) {
                stats.stopped_at_budget = true;
                return Ok(false);
            }
            Ok(true)
        },
    )?;
    Ok((PairPools { en: en.finish()?, xx: xx.finish()?, bridged: br.finish()?, switched }, stats))
}
