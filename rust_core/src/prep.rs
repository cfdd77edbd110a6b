//! The prep stages. Each is one call: a job (config section + paths) in, stats out.
//! Inputs stream into on-disk pools (`ingest.rs`); a bilingual stage then selects
//! pairs and monolingual text to the budget and ratio (here), and each output is
//! written from the pools in a seeded order (`output.rs`). Same job, same bytes.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};

use crate::codeswitch::Lexicon;
use crate::bridge::{check_template, min_pair_distance, order_with, order_without, Unit};
use crate::error::{Error, IoContext, Result};
use crate::ingest::{pool_docs, pool_pairs, DocFilter, Recorder};
use crate::job::{BilingualJob, MonolingualJob, Shortage};
use crate::output::write_output;
use crate::pool::{MemoryBudget, Pool};
use crate::script::ScriptFilter;
use crate::stats::{tokenizer_stats, CodeSwitchStats, InputStats, Selection, StageStats};
use crate::tokenize::TextTokenizer;

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

fn paths_as_strings(paths: &[PathBuf]) -> Vec<String> {
    paths.iter().map(|p| p.display().to_string()).collect()
}

pub fn run_monolingual(job: &MonolingualJob) -> Result<StageStats> {
    let start = Instant::now();
    let engine = &job.engine;
    let filter = DocFilter::new(&job.filter, "filter")?;
    let tok = TextTokenizer::load(&engine.tokenizer.path, &engine.tokenizer.eod, engine.tokenizer.implementation)?;
    std::fs::create_dir_all(&job.out_dir).at(&job.out_dir)?;
    let work = tempfile_dir(&job.out_dir)?;
    let mut rec = Recorder::new(&job.out_dir);
    let bar = progress(engine.progress, &job.name);
    thread_pool(engine.threads)?.install(|| {
        let (pool, stats) = if job.pools.is_empty() {
            let memory = MemoryBudget::new(engine.pool_memory_bytes);
            pool_docs(&job.source, &filter, &tok, engine, job.budget_tokens, &work, &job.name, &mut rec, &bar, false, &memory)?
        } else {
            merge_pools(job)?
        };
        if pool.entries.is_empty() {
            let skipped: u64 = stats.skipped.values().sum();
            let dropped: u64 = stats.dropped.values().sum();
            return Err(Error::input(
                &job.source.paths[0],
                None,
                format!(
                    "{}: no document survived: {} records read in {}: {} blank, {} dropped by the filter, {} skipped",
                    job.name,
                    stats.records_read,
                    paths_as_strings(&job.source.paths).join(", "),
                    stats.blank_lines,
                    dropped,
                    skipped
                ),
            ));
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
            codeswitch: None,
            outputs: vec![out],
            tokenizer: tokenizer_stats(&tok),
            seconds: start.elapsed().as_secs_f64(),
        })
    })
}

/// The pool directory of one shard of a unit (`job.source.shard`): its documents read,
/// filtered and tokenized as the single reader would (up to the budget: a later shard
/// never needs more), kept on disk with `ingest.json` (its counts) and any skips.
pub fn ingest_monolingual(job: &MonolingualJob) -> Result<InputStats> {
    if job.source.shard.is_none() {
        return Err(Error::config("prep", "a shard of a unit needs source.shard"));
    }
    let engine = &job.engine;
    let filter = DocFilter::new(&job.filter, "filter")?;
    let tok = TextTokenizer::load(&engine.tokenizer.path, &engine.tokenizer.eod, engine.tokenizer.implementation)?;
    std::fs::create_dir_all(&job.out_dir).at(&job.out_dir)?;
    let mut rec = Recorder::new(&job.out_dir);
    let bar = progress(engine.progress, &job.name);
    let (_, stats) = thread_pool(engine.threads)?
        .install(|| pool_docs(&job.source, &filter, &tok, engine, job.budget_tokens, &job.out_dir, POOL, &mut rec, &bar, true, &MemoryBudget::new(0)))?;
    rec.finish()?;
    let path = job.out_dir.join("ingest.json");
    std::fs::write(&path, serde_json::to_vec(&stats).expect("stats serialize")).at(&path)?;
    bar.finish_and_clear();
    Ok(stats)
}

const POOL: &str = "pool";

/// The shards' pools as one, cut at the budget, with their counts summed and their
/// skipped records in `skipped.jsonl` in input order.
fn merge_pools(job: &MonolingualJob) -> Result<(Pool, InputStats)> {
    let (pool, cut) = Pool::merge(&job.pools, POOL, job.budget_tokens)?;
    let mut stats = InputStats::default();
    let mut skipped = Vec::new();
    for dir in &job.pools {
        let path = dir.join("ingest.json");
        let bytes = std::fs::read(&path).at(&path)?;
        stats.absorb(serde_json::from_slice(&bytes).map_err(|e| Error::input(&path, None, format!("not a shard's counts: {e}")))?);
        let skips = dir.join("skipped.jsonl");
        if skips.exists() {
            skipped.extend(std::fs::read(&skips).at(&skips)?);
        }
    }
    if !skipped.is_empty() {
        let path = job.out_dir.join("skipped.jsonl");
        std::fs::write(&path, skipped).at(&path)?;
    }
    stats.documents_kept = pool.entries.len() as u64;
    stats.stopped_at_budget |= cut > 0;
    Ok((pool, stats))
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
    let xx_filter = DocFilter::new(&job.xx_filter, &format!("prep.languages.{lang}"))?;
    let lexicon = match &job.codeswitch {
        Some(cs) if !(0.0..=1.0).contains(&cs.rate) => {
            return Err(Error::config(format!("prep.languages.{lang}.switch_rate"), "must be between 0 and 1"))
        }
        Some(cs) => Some(Lexicon::read(&cs.lexicon)?),
        None => None,
    };
    let tok = TextTokenizer::load(&engine.tokenizer.path, &engine.tokenizer.eod, engine.tokenizer.implementation)?;
    std::fs::create_dir_all(&job.out_dir).at(&job.out_dir)?;
    let work = tempfile_dir(&job.out_dir)?;
    let mut rec = Recorder::new(&job.out_dir);
    let bar = progress(engine.progress, lang);
    let r = job.mono_per_parallel;
    thread_pool(engine.threads)?.install(|| {
        let par_budget = job.budget_tokens.map(|b| (b as f64 / (1.0 + r)).ceil() as u64);
        let memory = MemoryBudget::new(engine.pool_memory_bytes);
        let (pairs, pair_stats) = pool_pairs(job, &en_filter, &xx_filter.script, &tok, lexicon.as_ref(), par_budget, &work, &mut rec, &bar, &memory)?;
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
            pool_docs(&job.mono, &xx_filter, &tok, engine, Some(mono_target), &work, "mono", &mut rec, &bar, false, &memory)?;
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
        let codeswitch = job.codeswitch.as_ref().zip(lexicon.as_ref()).map(|(cs, lex)| {
            let used = &pairs.switched[..n_pairs];
            CodeSwitchStats {
                lexicon: cs.lexicon.display().to_string(),
                lexicon_entries: lex.entries,
                rate: cs.rate,
                words_listed: used.iter().map(|n| u64::from(n.listed)).sum(),
                words_switched: used.iter().map(|n| u64::from(n.replaced)).sum(),
            }
        });
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
            codeswitch,
            outputs,
            tokenizer: tokenizer_stats(&tok),
            seconds: start.elapsed().as_secs_f64(),
        })
    })
}


#[cfg(test)]
mod tests {
    use super::*;

    /// One batch or a batch per few records (so settling overlaps processing many times,
    /// and the budget stops reading mid-stream), pools in memory or in files, one thread
    /// or two: the same output bytes and counts. Python leaves these resource settings
    /// out of a unit's fingerprint on the strength of this test.
    #[test]
    fn resource_settings_change_nothing_in_the_output() {
        let dir = tempfile::tempdir().unwrap();
        let tok = crate::tokenize::tests::tiny_qwen_like(dir.path());
        let input = dir.path().join("en.jsonl");
        let mut lines = String::new();
        for i in 0..400 {
            match i % 50 {
                7 => lines.push('\n'),                                  // blank
                13 => lines.push_str("{\"text\": \n"),                  // malformed: skipped
                21 => lines.push_str("{\"text\": \"hello world\"}\n"), // repeats: dedup drops
                _ => lines.push_str(&format!("{{\"text\": \"hello {i} world, hell{} o\\n\\nwor{}ld\"}}\n", "l".repeat(i % 9), i * 7)),
            }
        }
        std::fs::write(&input, lines).unwrap();
        let run = |name: &str, batch_bytes: usize, pool_memory: u64, threads: usize, budget: Option<u64>| {
            let out = dir.path().join(name);
            let job = serde_json::json!({
                "name": "en", "language": "en",
                "source": {"paths": [input], "format": {"format": "jsonl", "text_field": "text"}},
                "filter": {"keep_scripts": ["Latin"], "min_chars": 1, "dedup": "exact"},
                "budget_tokens": budget,
                "engine": {"tokenizer": {"path": tok, "eod": "<|endoftext|>", "implementation": "auto"},
                           "seed": 3, "chunk_chars": 12, "on_error": "skip", "batch_bytes": batch_bytes,
                           "pool_memory_bytes": pool_memory, "threads": threads, "progress": false},
                "out_dir": out,
            });
            let mut stats = serde_json::to_value(run_monolingual(&serde_json::from_value(job).unwrap()).unwrap()).unwrap();
            stats.as_object_mut().unwrap().remove("seconds");
            // What the reader read depends on its batches; everything else must not.
            let read = stats["inputs"]["documents"].as_object_mut().unwrap().remove("records_read").unwrap();
            let files: Vec<(String, Vec<u8>)> = ["en.bin", "en.idx", "en.provenance.parquet", "en.chunks.parquet", "skipped.jsonl"]
                .iter()
                .map(|f| (f.to_string(), std::fs::read(out.join(f)).unwrap()))
                .collect();
            (stats, files, read.as_u64().unwrap())
        };
        for budget in [None, Some(3_000)] {
            // One batch on one thread with the pool in memory; small batches on two threads
            // with the pool spilling to files after about 20 documents, or from the start.
            let (one_stats, one_files, _) = run("one", 1 << 30, 1 << 30, 1, budget);
            for pool_memory in [2_000, 0] {
                let (many_stats, many_files, _) = run("many", 100, pool_memory, 2, budget);
                assert_eq!(one_stats, many_stats, "budget {budget:?}, pool memory {pool_memory}");
                assert_eq!(one_files, many_files, "budget {budget:?}, pool memory {pool_memory}");
            }
            let (_, _, read) = run("many", 100, 0, 2, budget);
            assert_eq!(read < 400, budget.is_some(), "the budget stops reading early: {read}");
            assert_eq!(one_stats["inputs"]["documents"]["stopped_at_budget"], budget.is_some());
            assert!(one_stats["inputs"]["documents"]["dropped"]["duplicate"].as_u64().unwrap() > 0, "{one_stats}");
        }
    }
}
