//! Content hashes of input files (completion records, the prep manifest).
use std::path::PathBuf;

use rayon::prelude::*;

use crate::error::{IoContext, Result};

/// SHA-256 of each file, in parallel.
pub fn hash_files(paths: &[PathBuf]) -> Result<Vec<String>> {
    use sha2::{Digest, Sha256};
    use std::io::Read;
    paths
        .par_iter()
        .map(|p| {
            let mut f = std::fs::File::open(p).at(p)?;
            let mut h = Sha256::new();
            let mut buf = vec![0u8; 1 << 20];
            loop {
                let n = f.read(&mut buf).at(p)?;
                if n == 0 {
                    break;
                }
                h.update(&buf[..n]);
            }
            Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
        })
        .collect()
}
