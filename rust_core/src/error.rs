//! One error type for the crate. Every variant that comes from an input names the
//! file and, where there is one, the line (1-based) or row at fault; the Python
//! bindings map each variant onto its own exception class.
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad input data: broken UTF-8, malformed JSON, a missing field, an empty file,
    /// parallel files of unequal length. `line` is 1-based (a row for Parquet).
    #[error("{}{}: {message}", path.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
    Input { path: PathBuf, line: Option<u64>, message: String },
    /// A configuration value that cannot be used; `key` is the dotted config key.
    #[error("config key `{key}`: {message}")]
    Config { key: String, message: String },
    /// A tokenizer file that is missing or cannot be loaded or used.
    #[error("tokenizer {}: {message}", path.display())]
    Tokenizer { path: PathBuf, message: String },
    /// An operating-system error on a named path (missing file, unwritable directory).
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, #[source] source: std::io::Error },
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn input(path: &Path, line: Option<u64>, message: impl Into<String>) -> Self {
        Error::Input { path: path.to_path_buf(), line, message: message.into() }
    }
    pub fn config(key: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Config { key: key.into(), message: message.into() }
    }
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        Error::Io { path: path.to_path_buf(), source }
    }
}

/// Attaches a path to `std::io::Result`s.
pub trait IoContext<T> {
    fn at(self, path: &Path) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn at(self, path: &Path) -> Result<T> {
        self.map_err(|e| Error::io(path, e))
    }
}
