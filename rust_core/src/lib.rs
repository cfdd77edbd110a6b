pub mod error;
pub mod pretokenize;
pub mod readers;
pub mod script;
pub mod tokenize;
