//! Writing one output from the pools in a given order: Megatron `.bin/.idx`, the
//! provenance table (where each document came from) and the retrieval chunks.
use std::path::Path;

use crate::bridge::Unit;
use crate::chunk::chunk;
use crate::error::{IoContext, Result};
use crate::ingest::PairPools;
use crate::job::Engine;
use crate::megatron::{IndexedDatasetWriter, TokenDtype};
use crate::pool::Pool;
use crate::stats::OutputStats;
use crate::tables::{ChunkWriter, ProvenanceRow, ProvenanceWriter};
use crate::tokenize::TextTokenizer;

/// Documents handed to the chunk writer at a time.
const BATCH: usize = 1024;

/// Writes one output: `.bin/.idx`, provenance and chunks, in `order`.
#[allow(clippy::too_many_arguments)]
pub fn write_output(
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
    let mut st = OutputStats { name: name.to_owned(), ..Default::default() };
    let bridged_lang = format!("en+{language}");
    let of = |unit: Unit| -> (&Pool, usize, &'static str, &str) {
        match unit {
            Unit::Mono(i) => (mono, i as usize, "mono", language),
            Unit::Bridged(i) => (&pairs.unwrap().bridged, i as usize, "bridged", bridged_lang.as_str()),
            Unit::En(i) => (&pairs.unwrap().en, i as usize, "pair_en", "en"),
            Unit::Xx(i) => (&pairs.unwrap().xx, i as usize, "pair_xx", language),
        }
    };
    // Compressing the chunk Parquet takes as long as everything else here, so it runs on
    // a thread of its own, fed batches of chunks in order.
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<(u64, &str, String)>>(4);
    std::thread::scope(|s| -> Result<()> {
        let chunker = s.spawn(|| -> Result<u64> {
            let mut chunks = ChunkWriter::create(&chunk_path)?;
            for batch in rx {
                for (doc_id, lang, text) in batch {
                    chunks.push(doc_id, lang, text)?;
                }
            }
            let n = chunks.chunks();
            chunks.finish()?;
            Ok(n)
        });
        let written = (|| -> Result<()> {
            let (mut ids, mut text) = (Vec::new(), Vec::new());
            for batch in order.chunks(BATCH).enumerate().map(|(b, units)| (b * BATCH..).zip(units)) {
                let mut cut = Vec::new();
                for (doc_id, &unit) in batch {
                    let (pool, i, kind, lang) = of(unit);
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
                    cut.extend(chunk(pool.text(i, &mut text)?, engine.chunk_chars).into_iter().map(|c| (doc_id as u64, lang, c)));
                }
                if tx.send(cut).is_err() {
                    break; // the chunker stopped on an error, returned below
                }
            }
            Ok(())
        })();
        drop(tx);
        let chunked = chunker.join().expect("chunk writer panicked");
        written?;
        st.chunks = chunked?;
        Ok(())
    })?;
    st.documents = w.documents() as u64;
    w.finish(&idx)?;
    prov.finish()?;
    st.files = [bin, idx, prov_path, chunk_path].iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
    Ok(st)
}
