//! A pool of processed documents: filtered text and token ids appended in input order,
//! with an in-memory index of where each document lies and where it came from. Outputs
//! are written from pools in any order. A pool is held in memory while the stage's
//! pools fit its memory budget and spills to files beyond it, so a corpus larger than
//! memory is never held whole, and one that fits is not written and read back.
use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::error::{IoContext, Result};

#[derive(Debug, Clone, Copy)]
pub struct DocEntry {
    pub tok_off: u64,
    pub tok_len: u32,
    pub text_off: u64,
    pub text_len: u32,
    pub file: u32,
    pub line: u64,
    /// Which of the pool's files (one per task of a merged pool) holds the document.
    pub seg: u32,
}

const ENTRY_BYTES: usize = 8 + 4 + 8 + 4 + 4 + 8;

impl DocEntry {
    fn to_bytes(self, out: &mut Vec<u8>) {
        out.extend(self.tok_off.to_le_bytes());
        out.extend(self.tok_len.to_le_bytes());
        out.extend(self.text_off.to_le_bytes());
        out.extend(self.text_len.to_le_bytes());
        out.extend(self.file.to_le_bytes());
        out.extend(self.line.to_le_bytes());
    }

    fn from_bytes(b: &[u8]) -> Self {
        let u64_at = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().unwrap());
        let u32_at = |i: usize| u32::from_le_bytes(b[i..i + 4].try_into().unwrap());
        DocEntry { tok_off: u64_at(0), tok_len: u32_at(8), text_off: u64_at(12), text_len: u32_at(20), file: u32_at(24), line: u64_at(28), seg: 0 }
    }
}

/// Token ids as stored: little-endian u32, borrowed as they are where that is the
/// machine's order.
fn as_le_bytes(tokens: &[u32]) -> std::borrow::Cow<'_, [u8]> {
    if cfg!(target_endian = "little") {
        // SAFETY: a u32 slice viewed as its bytes, same length in bytes, no padding.
        std::borrow::Cow::Borrowed(unsafe { std::slice::from_raw_parts(tokens.as_ptr().cast::<u8>(), tokens.len() * 4) })
    } else {
        std::borrow::Cow::Owned(tokens.iter().flat_map(|t| t.to_le_bytes()).collect())
    }
}

/// Bytes a stage's pools may still hold in memory, shared by its writers.
#[derive(Clone)]
pub struct MemoryBudget(Arc<AtomicU64>);

impl MemoryBudget {
    pub fn new(bytes: u64) -> Self {
        MemoryBudget(Arc::new(AtomicU64::new(bytes)))
    }

    fn take(&self, bytes: u64) -> bool {
        self.0.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| left.checked_sub(bytes)).is_ok()
    }

    fn give_back(&self, bytes: u64) {
        self.0.fetch_add(bytes, Ordering::Relaxed);
    }
}

/// One of a pool's two byte streams: in memory until the budget runs out, then a file.
struct Spool {
    path: PathBuf,
    memory: Vec<u8>,
    file: Option<BufWriter<File>>,
}

impl Spool {
    fn new(path: PathBuf) -> Self {
        Spool { path, memory: Vec::new(), file: None }
    }

    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        match &mut self.file {
            Some(f) => f.write_all(bytes).at(&self.path),
            None => {
                self.memory.extend_from_slice(bytes);
                Ok(())
            }
        }
    }

    /// Moves what is in memory to the file; later writes go there.
    fn spill(&mut self) -> Result<()> {
        if self.file.is_none() {
            let mut f = BufWriter::with_capacity(1 << 22, File::create(&self.path).at(&self.path)?);
            f.write_all(&std::mem::take(&mut self.memory)).at(&self.path)?;
            self.file = Some(f);
        }
        Ok(())
    }

    fn finish(self) -> Result<Store> {
        match self.file {
            None => Ok(Store::Memory(self.memory)),
            Some(mut f) => {
                f.flush().at(&self.path)?;
                Ok(Store::File(File::open(&self.path).at(&self.path)?, self.path))
            }
        }
    }
}

pub struct PoolWriter {
    tokens: Spool,
    text: Spool,
    budget: MemoryBudget,
    /// Bytes this writer took from the budget (given back when it spills).
    held: u64,
    pub entries: Vec<DocEntry>,
    tok_off: u64,
    text_off: u64,
}

impl PoolWriter {
    pub fn create(dir: &Path, name: &str, budget: &MemoryBudget) -> Result<Self> {
        Ok(PoolWriter {
            tokens: Spool::new(dir.join(format!("{name}.tokens"))),
            text: Spool::new(dir.join(format!("{name}.text"))),
            budget: budget.clone(),
            held: 0,
            entries: Vec::new(),
            tok_off: 0,
            text_off: 0,
        })
    }

    /// Tokens exclude the EOD, which writers append.
    pub fn push(&mut self, text: &str, tokens: &[u32], file: u32, line: u64) -> Result<()> {
        let bytes = (tokens.len() * 4 + text.len()) as u64;
        if self.tokens.file.is_none() {
            if self.budget.take(bytes) {
                self.held += bytes;
            } else {
                self.spill()?;
            }
        }
        self.tokens.write(as_le_bytes(tokens).as_ref())?;
        self.text.write(text.as_bytes())?;
        self.entries.push(DocEntry {
            tok_off: self.tok_off,
            tok_len: tokens.len() as u32,
            text_off: self.text_off,
            text_len: text.len() as u32,
            file,
            line,
            seg: 0,
        });
        self.tok_off += tokens.len() as u64;
        self.text_off += text.len() as u64;
        Ok(())
    }

    fn spill(&mut self) -> Result<()> {
        self.tokens.spill()?;
        self.text.spill()?;
        self.budget.give_back(std::mem::take(&mut self.held));
        Ok(())
    }

    pub fn finish(self) -> Result<Pool> {
        let seg = Segment { tokens: self.tokens.finish()?, text: self.text.finish()? };
        Ok(Pool { segs: vec![seg], entries: self.entries })
    }

    /// Finishes the pool and keeps it on disk: `{name}.entries` beside its token and
    /// text files, for `Pool::merge` in another process.
    pub fn finish_to_disk(mut self) -> Result<Pool> {
        self.spill()?;
        let entries_path = self.tokens.path.with_extension("entries");
        let pool = self.finish()?;
        let mut bytes = Vec::with_capacity(pool.entries.len() * ENTRY_BYTES);
        pool.entries.iter().for_each(|e| e.to_bytes(&mut bytes));
        std::fs::write(&entries_path, bytes).at(&entries_path)?;
        Ok(pool)
    }
}

/// A finished stream: in memory, or a file read with positioned reads (no mmap, so
/// resident memory stays bounded whatever the file's size).
enum Store {
    Memory(Vec<u8>),
    File(File, PathBuf),
}

impl Store {
    fn open(path: PathBuf) -> Result<Self> {
        Ok(Store::File(File::open(&path).at(&path)?, path))
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<()> {
        match self {
            Store::Memory(m) => {
                buf.copy_from_slice(&m[offset as usize..offset as usize + buf.len()]);
                Ok(())
            }
            Store::File(f, path) => f.read_exact_at(buf, offset).at(path),
        }
    }
}

struct Segment {
    tokens: Store,
    text: Store,
}

/// A finished pool.
pub struct Pool {
    segs: Vec<Segment>,
    pub entries: Vec<DocEntry>,
}

impl Pool {
    /// The pools `finish_to_disk` left as `{name}.*` in `dirs`, one after the other, cut
    /// where a single reader would have stopped: a document is kept while the tokens
    /// before it (EOD included) are under `budget`. Returns the pool and how many
    /// documents the cut dropped.
    pub fn merge(dirs: &[PathBuf], name: &str, budget: Option<u64>) -> Result<(Pool, u64)> {
        let (mut segs, mut entries, mut cut, mut tokens) = (Vec::new(), Vec::new(), 0u64, 0u64);
        for (seg, dir) in dirs.iter().enumerate() {
            let ep = dir.join(format!("{name}.entries"));
            let bytes = std::fs::read(&ep).at(&ep)?;
            for b in bytes.chunks_exact(ENTRY_BYTES) {
                if budget.is_some_and(|b| tokens >= b) {
                    cut += 1;
                    continue;
                }
                let e = DocEntry { seg: seg as u32, ..DocEntry::from_bytes(b) };
                tokens += e.tok_len as u64 + 1;
                entries.push(e);
            }
            segs.push(Segment { tokens: Store::open(dir.join(format!("{name}.tokens")))?, text: Store::open(dir.join(format!("{name}.text")))? });
        }
        Ok((Pool { segs, entries }, cut))
    }

    pub fn tokens(&self, i: usize, out: &mut Vec<u32>) -> Result<()> {
        let e = self.entries[i];
        let seg = &self.segs[e.seg as usize];
        let from = out.len();
        out.resize(from + e.tok_len as usize, 0);
        let ids = &mut out[from..];
        // SAFETY: any bytes are a valid u32, and the view covers exactly `ids`.
        let bytes = unsafe { std::slice::from_raw_parts_mut(ids.as_mut_ptr().cast::<u8>(), ids.len() * 4) };
        seg.tokens.read_at(bytes, e.tok_off * 4)?;
        ids.iter_mut().for_each(|t| *t = u32::from_le(*t)); // a no-op on little-endian machines
        Ok(())
    }

    /// Document `i`'s text: borrowed from a pool in memory, else read into `buf`.
    pub fn text<'a>(&'a self, i: usize, buf: &'a mut Vec<u8>) -> Result<&'a str> {
        let e = self.entries[i];
        let (from, to) = (e.text_off as usize, e.text_off as usize + e.text_len as usize);
        match &self.segs[e.seg as usize].text {
            // SAFETY: a memory store holds only what `push` copied from `&str`s, whole.
            Store::Memory(m) => Ok(unsafe { std::str::from_utf8_unchecked(&m[from..to]) }),
            store => {
                buf.resize(to - from, 0);
                store.read_at(buf, e.text_off)?;
                Ok(std::str::from_utf8(buf).expect("pool text is UTF-8"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writers_share_the_memory_budget_and_spill_beyond_it() {
        let dir = tempfile::tempdir().unwrap();
        let budget = MemoryBudget::new(1_000);
        let (mut a, mut b) = (PoolWriter::create(dir.path(), "a", &budget).unwrap(), PoolWriter::create(dir.path(), "b", &budget).unwrap());
        let doc = |i: u32| (format!("document {i} ").repeat(1 + i as usize % 4), (0..i % 7).map(|t| t * 1_000_003 + i).collect::<Vec<u32>>());
        for i in 0..60 {
            let (text, ids) = doc(i);
            a.push(&text, &ids, 0, i as u64).unwrap();
            if i < 3 {
                b.push(&text, &ids, 1, i as u64).unwrap(); // b keeps its few documents in memory
            }
        }
        assert!(dir.path().join("a.text").exists() && !dir.path().join("b.text").exists(), "a spilled, b did not");
        let (a, b) = (a.finish().unwrap(), b.finish().unwrap());
        for (pool, n) in [(&a, 60), (&b, 3)] {
            assert_eq!(pool.entries.len(), n);
            for i in 0..n {
                let (text, ids) = doc(i as u32);
                let mut got = vec![7];
                pool.tokens(i, &mut got).unwrap();
                assert_eq!((pool.text(i, &mut Vec::new()).unwrap(), &got[1..]), (&text[..], &ids[..]), "document {i}");
            }
        }
        // a gave back what it held when it spilled; b's bytes are still taken.
        let b_bytes: u64 = (0..3).map(|i| doc(i).0.len() as u64 + doc(i).1.len() as u64 * 4).sum();
        assert!(budget.take(1_000 - b_bytes) && !budget.take(1));
    }
}
