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

/// A written datastore opened for reading (memory-mapped), for the window counts.
pub struct ByteDatastore {
    data: memmap2::Mmap,
    /// Each document's first byte (its separator), ascending.
    offsets: Vec<u64>,
}

impl ByteDatastore {
    pub fn open(dir: &Path) -> Result<Self> {
        let path = dir.join("tokenized.0");
        let f = File::open(&path).map_err(|e| Error::io(&path, e))?;
        // SAFETY: the datastore is written once, renamed into place, and never modified.
        let data = unsafe { memmap2::Mmap::map(&f) }.map_err(|e| Error::io(&path, e))?;
        let off_path = dir.join("offset.0");
        let raw = std::fs::read(&off_path).map_err(|e| Error::io(&off_path, e))?;
        if raw.len() % 8 != 0 {
            return Err(Error::input(&off_path, None, "offset.0 is not a whole number of u64"));
        }
        let offsets = raw.chunks_exact(8).map(|b| u64::from_le_bytes(b.try_into().unwrap())).collect();
        Ok(ByteDatastore { data, offsets })
    }

    /// [start, end) of the document holding byte `p`.
    fn document(&self, p: u64) -> (usize, usize) {
        let i = self.offsets.partition_point(|&o| o <= p) - 1;
        let end = self.offsets.get(i + 1).map_or(self.data.len(), |&o| o as usize);
        (self.offsets[i] as usize, end)
    }

    /// Starts of `needle` within `window` bytes of `p` (start to start) in p's document.
    fn near(&self, p: u64, needle: &memchr::memmem::Finder, window: u64) -> impl Iterator<Item = u64> + '_ {
        let (start, end) = self.document(p);
        let lo = (p.saturating_sub(window) as usize).max(start);
        let hi = ((p + window) as usize + needle.needle().len()).min(end);
        // every start, overlapping ones too (" a " occurs twice in " a a "), as a suffix array counts
        let mut hits = Vec::new();
        let mut at = lo;
        while at < hi {
            match needle.find(&self.data[at..hi]) {
                Some(i) => {
                    hits.push((at + i) as u64);
                    at += i + 1;
                }
                None => break,
            }
        }
        hits.into_iter()
    }

    /// Occurrences of the answer with an occurrence of the entity in the same document,
    /// starts at most `window` bytes apart. `anchors` are the sorted starts of one side,
    /// `other` the other side's bytes: with `anchors_are_answers` each answer is tested
    /// for an entity near it; otherwise the answers near each entity are collected (the
    /// cheaper scan is over the rarer side's occurrences).
    pub fn count_near(&self, anchors: &[u64], other: &[u8], window: u64, anchors_are_answers: bool) -> u64 {
        if other.is_empty() || self.offsets.is_empty() {
            return 0;
        }
        let finder = memchr::memmem::Finder::new(other);
        if anchors_are_answers {
            anchors.iter().filter(|&&p| self.near(p, &finder, window).next().is_some()).count() as u64
        } else {
            anchors.iter().flat_map(|&q| self.near(q, &finder, window)).collect::<HashSet<u64>>().len() as u64
        }
    }
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
    fn near_counts_stay_in_the_document_and_the_window() {
        let dir = tempfile::tempdir().unwrap();
        let texts = ["Tumo eat dunur.", &format!("Tumo {} dunur", "x".repeat(600)), "dunur alone", "the Tumo and Tumo eat dunur"];
        let rows: Vec<(u64, &str, &str)> = texts.iter().enumerate().map(|(i, t)| (i as u64, "en", *t)).collect();
        let p = chunk_file(dir.path(), &rows);
        let out = dir.path().join("ds");
        std::fs::create_dir(&out).unwrap();
        write_datastore(&DatastoreJob { chunks: vec![p], keep_languages: vec![], out_dir: out.clone() }).unwrap();
        let ds = ByteDatastore::open(&out).unwrap();
        let data = std::fs::read(out.join("tokenized.0")).unwrap();
        let starts = |s: &[u8]| -> Vec<u64> { memchr::memmem::find_iter(&data, s).map(|i| i as u64).collect() };
        let (answers, entities) = (starts(b"dunur"), starts(b"Tumo"));
        for window in [5u64, 10, 30, 500, 700] {
            let a = ds.count_near(&answers, b"Tumo", window, true);
            let b = ds.count_near(&entities, b"dunur", window, false);
            assert_eq!(a, b, "window {window}: both sides count the same answers");
        }
        assert_eq!(ds.count_near(&answers, b"Tumo", 500, true), 2); // document 1's pair is 605 bytes apart
        assert_eq!(ds.count_near(&answers, b"Tumo", 700, true), 3);
        assert_eq!(ds.count_near(&answers, b"Tumo", 5, true), 0);
        assert_eq!(ds.count_near(&answers, b"", 500, true), 0);
    }

    #[test]
    fn overlapping_answers_each_count() {
        let dir = tempfile::tempdir().unwrap();
        let p = chunk_file(dir.path(), &[(0, "en", "In a called called b"), (1, "en", "zz")]);
        let out = dir.path().join("ds");
        std::fs::create_dir(&out).unwrap();
        write_datastore(&DatastoreJob { chunks: vec![p], keep_languages: vec![], out_dir: out.clone() }).unwrap();
        let ds = ByteDatastore::open(&out).unwrap();
        // " called " starts at 5 and 12 (sharing a space); "In" at 1
        assert_eq!(ds.count_near(&[1], b" called ", 50, false), 2);
        assert_eq!(ds.count_near(&[5, 12], b"In", 50, true), 2);
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
