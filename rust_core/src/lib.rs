pub mod error;
pub mod readers;
pub mod script;
