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
