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
        let bytes: Vec<u8> = tokens.iter().flat_map(|t| t.to_le_bytes()).collect();
        self.tokens.write_all(&bytes).at(&self.paths.0)?;
        self.text.write_all(text.as_bytes()).at(&self.paths.1)?;
        self.entries.push(DocEntry {
            tok_off: self.tok_off,
            tok_len: tokens.len() as u32,
            text_off: self.text_off,
            text_len: text.len() as u32,
            file,
            line,
        });
        self.tok_off += tokens.len() as u64;
        self.text_off += text.len() as u64;
        Ok(())
    }

    pub fn finish(mut self) -> Result<Pool> {
        self.tokens.flush().at(&self.paths.0)?;
        self.text.flush().at(&self.paths.1)?;
        let tokens = File::open(&self.paths.0).at(&self.paths.0)?;
        let text = File::open(&self.paths.1).at(&self.paths.1)?;
        Ok(Pool { tokens, text, paths: self.paths, entries: self.entries })
    }
}

/// A finished pool, read with positioned reads (no mmap, so resident memory stays
/// bounded whatever the pool's size).
pub struct Pool {
    tokens: File,
    text: File,
    paths: (PathBuf, PathBuf),
    pub entries: Vec<DocEntry>,
}

impl Pool {
    pub fn tokens(&self, i: usize, out: &mut Vec<u32>) -> Result<()> {
        let e = self.entries[i];
        let mut buf = vec![0u8; e.tok_len as usize * 4];
        self.tokens.read_exact_at(&mut buf, e.tok_off * 4).at(&self.paths.0)?;
        out.extend(buf.chunks_exact(4).map(|c| u32::from_le_bytes(c.try_into().unwrap())));
        Ok(())
    }

    pub fn text(&self, i: usize) -> Result<String> {
        let e = self.entries[i];
        let mut buf = vec![0u8; e.text_len as usize];
        self.text.read_exact_at(&mut buf, e.text_off).at(&self.paths.1)?;
        Ok(String::from_utf8(buf).expect("pool text is UTF-8"))
    }
}
