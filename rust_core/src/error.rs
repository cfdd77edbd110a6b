//! One error type for the crate. Every variant that comes from an input names the
//! file and, where there is one, the line (1-based) or row at fault; the Python
//! bindings map each variant onto its own exception class.
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad input data: broken UTF-8, malformed JSON, a missing field, an empty file,
    /// parallel files of unequal length. `line` is 1-based (a row for Parquet).
    #[error("{}{}: {message}", path.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
    Input { path: PathBuf, line: Option<u64>, kind: InputKind, message: String },
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

/// Why one input record could not be decoded: the key it is counted under when
/// `on_error = "skip"` (`stats.json` -> `inputs.*.skipped`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputKind {
    InvalidUtf8,
    MalformedJson,
    NotAnObject,
    MissingTextField,
    NotAString,
    NullText,
    NotTwoFields,
    /// Anything else about a file (an empty input, a Parquet column of the wrong type).
    Other,
}

impl InputKind {
    pub fn key(self) -> &'static str {
        match self {
            InputKind::InvalidUtf8 => "invalid_utf_8",
            InputKind::MalformedJson => "malformed_json",
            InputKind::NotAnObject => "not_an_object",
            InputKind::MissingTextField => "missing_text_field",
            InputKind::NotAString => "is_not_a_string",
            InputKind::NullText => "null_text",
            InputKind::NotTwoFields => "tab_separated",
            InputKind::Other => "other",
        }
    }
}

impl Error {
    pub fn input(path: &Path, line: Option<u64>, message: impl Into<String>) -> Self {
        Error::record(path, line, InputKind::Other, message)
    }
    /// A record that cannot be decoded, with the reason it is counted under.
    pub fn record(path: &Path, line: Option<u64>, kind: InputKind, message: impl Into<String>) -> Self {
        Error::Input { path: path.to_path_buf(), line, kind, message: message.into() }
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
