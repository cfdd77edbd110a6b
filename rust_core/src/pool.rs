//! An on-disk pool of processed documents: filtered text and token ids appended in
//! input order, with an in-memory index of where each document lies and where it came
//! from. Outputs are written from pools in any order without holding text in memory.
use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

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

pub struct PoolWriter {
    tokens: BufWriter<File>,
    text: BufWriter<File>,
    paths: (PathBuf, PathBuf),
    pub entries: Vec<DocEntry>,
    tok_off: u64,
    text_off: u64,
}

impl PoolWriter {
    pub fn create(dir: &Path, name: &str) -> Result<Self> {
        let tp = dir.join(format!("{name}.tokens"));
        let xp = dir.join(format!("{name}.text"));
        Ok(PoolWriter {
            tokens: BufWriter::with_capacity(1 << 22, File::create(&tp).at(&tp)?),
            text: BufWriter::with_capacity(1 << 22, File::create(&xp).at(&xp)?),
            paths: (tp, xp),
            entries: Vec::new(),
            tok_off: 0,
            text_off: 0,
        })
    }

    /// Tokens exclude the EOD, which writers append.
    pub fn push(&mut self, text: &str, tokens: &[u32], file: u32, line: u64) -> Result<()> {
        self.tokens.write_all(as_le_bytes(tokens).as_ref()).at(&self.paths.0)?;
        self.text.write_all(text.as_bytes()).at(&self.paths.1)?;
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

    pub fn finish(mut self) -> Result<Pool> {
        self.tokens.flush().at(&self.paths.0)?;
        self.text.flush().at(&self.paths.1)?;
        let seg = Segment::open(self.paths)?;
        Ok(Pool { segs: vec![seg], entries: self.entries })
    }

    /// Finishes the pool and keeps it: `{name}.entries` beside its token and text files,
    /// for `Pool::merge` in another process.
    pub fn finish_to_disk(self) -> Result<Pool> {
        let entries_path = self.paths.0.with_extension("entries");
        let pool = self.finish()?;
        let mut bytes = Vec::with_capacity(pool.entries.len() * ENTRY_BYTES);
        pool.entries.iter().for_each(|e| e.to_bytes(&mut bytes));
        std::fs::write(&entries_path, bytes).at(&entries_path)?;
        Ok(pool)
    }
}

struct Segment {
    tokens: File,
    text: File,
    paths: (PathBuf, PathBuf),
}

impl Segment {
    fn open(paths: (PathBuf, PathBuf)) -> Result<Self> {
        Ok(Segment { tokens: File::open(&paths.0).at(&paths.0)?, text: File::open(&paths.1).at(&paths.1)?, paths })
    }
}

/// A finished pool, read with positioned reads (no mmap, so resident memory stays
/// bounded whatever the pool's size).
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
            segs.push(Segment::open((dir.join(format!("{name}.tokens")), dir.join(format!("{name}.text"))))?);
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
        seg.tokens.read_exact_at(bytes, e.tok_off * 4).at(&seg.paths.0)?;
        ids.iter_mut().for_each(|t| *t = u32::from_le(*t)); // a no-op on little-endian machines
        Ok(())
    }

    pub fn text(&self, i: usize) -> Result<String> {
        let e = self.entries[i];
        let seg = &self.segs[e.seg as usize];
        let mut buf = vec![0u8; e.text_len as usize];
        seg.text.read_exact_at(&mut buf, e.text_off).at(&seg.paths.1)?;
        Ok(String::from_utf8(buf).expect("pool text is UTF-8"))
    }
}
