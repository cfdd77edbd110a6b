//! A corpus as an infini-gram datastore of raw UTF-8 bytes (token width 1): the
//! `tokenized.0` and `offset.0` files its suffix-array builder reads. Each document is
//! 0xFF followed by its text — its chunks, in order, joined by a newline — and 0xFF
//! never occurs in UTF-8, so no match crosses a document boundary; `offset.0` holds
//! each document's starting byte as a little-endian u64.
use std::collections::HashSet;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::tables;

pub const DOC_SEPARATOR: u8 = 0xFF;

#[derive(Deserialize, Serialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct DatastoreJob {
    pub chunks: Vec<PathBuf>,
    /// Only chunks whose `language` is one of these (empty: all), as the index takes them.
    #[serde(default)]
    pub keep_languages: Vec<String>,
    pub out_dir: PathBuf,
}

#[derive(Serialize, Debug, PartialEq)]
pub struct DatastoreStats {
    pub documents: u64,
    pub chunks: u64,
    pub chunks_skipped_language: u64,
    pub bytes: u64,
    pub seconds: f64,
}

struct Out {
    data: BufWriter<File>,
    offsets: BufWriter<File>,
    path: PathBuf,
    pos: u64,
}

impl Out {
    fn start_document(&mut self) -> Result<()> {
        let io = |e| Error::io(&self.path, e);
        self.offsets.write_all(&self.pos.to_le_bytes()).map_err(io)?;
        self.data.write_all(&[DOC_SEPARATOR]).map_err(|e| Error::io(&self.path, e))?;
        self.pos += 1;
        Ok(())
    }
    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.data.write_all(bytes).map_err(|e| Error::io(&self.path, e))?;
        self.pos += bytes.len() as u64;
        Ok(())
    }
}

/// Writes `tokenized.0` and `offset.0` into `job.out_dir` (which must exist). The chunks
/// of one document must be consecutive, as prep writes them; a document id met again
/// after another document is an error naming the chunk file.
pub fn write_datastore(job: &DatastoreJob) -> Result<DatastoreStats> {
    let t0 = Instant::now();
    let create = |name: &str| -> Result<BufWriter<File>> {
        let p = job.out_dir.join(name);
        Ok(BufWriter::with_capacity(1 << 20, File::create(&p).map_err(|e| Error::io(&p, e))?))
    };
    let mut out = Out { data: create("tokenized.0")?, offsets: create("offset.0")?, path: job.out_dir.join("tokenized.0"), pos: 0 };
    let (mut current, mut seen, mut chunks) = (None::<u64>, HashSet::new(), 0u64);
    let skipped = tables::for_each_chunk(&job.chunks, &job.keep_languages, |path: &Path, chunk| {
        if current == Some(chunk.document_id) {
            out.write(b"\n")?;
        } else {
            if !seen.insert(chunk.document_id) {
                return Err(Error::input(path, None, format!("chunks of document {} are not consecutive (chunk {})", chunk.document_id, chunk.chunk_id)));
            }
            current = Some(chunk.document_id);
            out.start_document()?;
        }
        chunks += 1;
        out.write(chunk.text.as_bytes())
    })?;
    let bytes = out.pos;
    for (w, name) in [(out.data, "tokenized.0"), (out.offsets, "offset.0")] {
        let p = job.out_dir.join(name);
        w.into_inner().map_err(|e| Error::io(&p, e.into_error()))?.sync_all().map_err(|e| Error::io(&p, e))?;
    }
    Ok(DatastoreStats { documents: seen.len() as u64, chunks, chunks_skipped_language: skipped, bytes, seconds: t0.elapsed().as_secs_f64() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tables::ChunkWriter;

    fn chunk_file(dir: &Path, rows: &[(u64, &str, &str)]) -> PathBuf {
        let p = dir.join("c.chunks.parquet");
        let mut w = ChunkWriter::create(&p).unwrap();
        for (doc, lang, text) in rows {
            w.push(*doc, lang, text.to_string()).unwrap();
        }
        w.finish().unwrap();
        p
    }

    #[test]
    fn documents_are_separated_and_offsets_point_at_them() {
        let dir = tempfile::tempdir().unwrap();
        let p = chunk_file(dir.path(), &[(0, "en", "yak butter"), (0, "en", "tea"), (1, "bo", "ལྷ་ས"), (2, "en", "Lhasa")]);
        let out = dir.path().join("ds");
        std::fs::create_dir(&out).unwrap();
        let job = DatastoreJob { chunks: vec![p.clone()], keep_languages: vec!["en".into()], out_dir: out.clone() };
        let s = write_datastore(&job).unwrap();
        let data = std::fs::read(out.join("tokenized.0")).unwrap();
        assert_eq!(data, b"\xffyak butter\ntea\xffLhasa");
        let offs: Vec<u64> = std::fs::read(out.join("offset.0")).unwrap().chunks(8).map(|b| u64::from_le_bytes(b.try_into().unwrap())).collect();
        assert_eq!(offs, vec![0, 15]);
        assert_eq!((s.documents, s.chunks, s.chunks_skipped_language, s.bytes), (2, 3, 1, data.len() as u64));
        let all = DatastoreJob { keep_languages: vec![], ..job };
        let s = write_datastore(&all).unwrap();
        let want = [&b"\xffyak butter\ntea\xff"[..], "ལྷ་ས".as_bytes(), b"\xffLhasa"].concat();
        assert_eq!(std::fs::read(out.join("tokenized.0")).unwrap(), want);
        assert_eq!(s.documents, 3);
    }

    #[test]
    fn a_document_split_apart_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = chunk_file(dir.path(), &[(0, "en", "a"), (1, "en", "b"), (0, "en", "c")]);
        let out = dir.path().join("ds");
        std::fs::create_dir(&out).unwrap();
        let e = write_datastore(&DatastoreJob { chunks: vec![p], keep_languages: vec![], out_dir: out }).unwrap_err();
        assert!(e.to_string().contains("chunks of document 0 are not consecutive"), "{e}");
        assert!(e.to_string().contains("c.chunks.parquet"), "{e}");
    }
}
