//! Writer for Megatron-Core's indexed dataset (`.bin` tokens + `.idx` index), byte
//! for byte what `megatron.core.datasets.indexed_dataset.IndexedDatasetBuilder`
//! writes for one sequence per document.
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, IoContext, Result};

pub const INDEX_HEADER: &[u8; 9] = b"MMIDIDX\x00\x00";

/// Megatron's `DType.optimal_dtype`: uint16 when the vocabulary fits, else int32.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TokenDtype {
    U16,
    I32,
}

impl TokenDtype {
    pub fn for_vocab(vocab_size: usize) -> Self {
        if vocab_size < 65500 {
            TokenDtype::U16
        } else {
            TokenDtype::I32
        }
    }
    /// Megatron's numeric dtype code.
    pub fn code(self) -> u8 {
        match self {
            TokenDtype::U16 => 8,
            TokenDtype::I32 => 4,
        }
    }
    pub fn size(self) -> usize {
        match self {
            TokenDtype::U16 => 2,
            TokenDtype::I32 => 4,
        }
    }
}

pub struct IndexedDatasetWriter {
    bin: BufWriter<File>,
    bin_path: PathBuf,
    dtype: TokenDtype,
    lengths: Vec<i32>,
    buf: Vec<u8>,
}

impl IndexedDatasetWriter {
    pub fn create(bin_path: &Path, dtype: TokenDtype) -> Result<Self> {
        let bin = BufWriter::with_capacity(1 << 22, File::create(bin_path).at(bin_path)?);
        Ok(IndexedDatasetWriter { bin, bin_path: bin_path.to_path_buf(), dtype, lengths: Vec::new(), buf: Vec::new() })
    }

    /// Appends one document (its EOD token included by the caller).
    pub fn add_document(&mut self, tokens: &[u32]) -> Result<()> {
        self.buf.clear();
        match self.dtype {
            TokenDtype::U16 => {
                for &t in tokens {
                    let t = u16::try_from(t).map_err(|_| {
                        Error::config("tokenizer", format!("token id {t} does not fit the uint16 dataset"))
                    })?;
                    self.buf.extend_from_slice(&t.to_le_bytes());
                }
            }
            TokenDtype::I32 => tokens.iter().for_each(|&t| self.buf.extend_from_slice(&(t as i32).to_le_bytes())),
        }
        self.bin.write_all(&self.buf).at(&self.bin_path)?;
        let len = i32::try_from(tokens.len())
            .map_err(|_| Error::config("tokenizer", "a document longer than 2^31 tokens"))?;
        self.lengths.push(len);
        Ok(())
    }

    pub fn documents(&self) -> usize {
        self.lengths.len()
    }

    /// Flushes the `.bin` and writes the `.idx`.
    pub fn finish(mut self, idx_path: &Path) -> Result<()> {
        self.bin.flush().at(&self.bin_path)?;
        self.bin.get_ref().sync_all().at(&self.bin_path)?;
        let mut idx = BufWriter::new(File::create(idx_path).at(idx_path)?);
        let n = self.lengths.len() as u64;
        let mut out = Vec::with_capacity(34 + self.lengths.len() * 20 + 8);
        out.extend_from_slice(INDEX_HEADER);
        out.extend_from_slice(&1u64.to_le_bytes());
        out.push(self.dtype.code());
        out.extend_from_slice(&n.to_le_bytes());
        out.extend_from_slice(&(n + 1).to_le_bytes());
        self.lengths.iter().for_each(|l| out.extend_from_slice(&l.to_le_bytes()));
        let mut ptr = 0i64;
        for &l in &self.lengths {
            out.extend_from_slice(&ptr.to_le_bytes());
            ptr += l as i64 * self.dtype.size() as i64;
        }
        (0..=n as i64).for_each(|d| out.extend_from_slice(&d.to_le_bytes()));
        idx.write_all(&out).at(idx_path)?;
        idx.flush().at(idx_path)?;
        idx.get_ref().sync_all().at(idx_path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idx_byte_layout() {
        let dir = tempfile::tempdir().unwrap();
        let (bin, idx) = (dir.path().join("d.bin"), dir.path().join("d.idx"));
        let mut w = IndexedDatasetWriter::create(&bin, TokenDtype::for_vocab(151_665)).unwrap();
        w.add_document(&[5, 6, 151643]).unwrap();
        w.add_document(&[7, 151643]).unwrap();
        w.finish(&idx).unwrap();
        let b = std::fs::read(&idx).unwrap();
        assert_eq!(&b[..9], b"MMIDIDX\x00\x00");
        assert_eq!(u64::from_le_bytes(b[9..17].try_into().unwrap()), 1);
        assert_eq!(b[17], 4, "int32 for a vocabulary of 151,665");
        assert_eq!(u64::from_le_bytes(b[18..26].try_into().unwrap()), 2, "sequences");
        assert_eq!(u64::from_le_bytes(b[26..34].try_into().unwrap()), 3, "documents + 1");
        let i32s = |o: usize| i32::from_le_bytes(b[o..o + 4].try_into().unwrap());
        let i64s = |o: usize| i64::from_le_bytes(b[o..o + 8].try_into().unwrap());
        assert_eq!((i32s(34), i32s(38)), (3, 2));
        assert_eq!((i64s(42), i64s(50)), (0, 12), "byte pointers");
        assert_eq!((i64s(58), i64s(66), i64s(74)), (0, 1, 2), "document indices");
        assert_eq!(b.len(), 82);
        let bin = std::fs::read(&bin).unwrap();
        assert_eq!(bin.len(), 20);
        assert_eq!(i32::from_le_bytes(bin[8..12].try_into().unwrap()), 151643);
    }

    #[test]
    fn small_vocabularies_use_uint16() {
        assert_eq!(TokenDtype::for_vocab(65_499), TokenDtype::U16);
        assert_eq!(TokenDtype::for_vocab(65_500), TokenDtype::I32);
        let dir = tempfile::tempdir().unwrap();
        let mut w = IndexedDatasetWriter::create(&dir.path().join("d.bin"), TokenDtype::U16).unwrap();
        assert!(w.add_document(&[70_000]).is_err());
    }
}
