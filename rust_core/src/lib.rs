pub mod analyzers;
pub mod bm25;
pub mod bpe;
pub mod bridge;
pub mod chunk;
pub mod codeswitch;
pub mod datastore;
pub mod error;
pub mod hash;
pub mod impacts;
pub mod ingest;
pub mod job;
pub mod langid;
pub mod megatron;
pub mod minhash;
pub mod output;
pub mod piece_cache;
pub mod pool;
pub mod prep;
pub mod pretokenize;
pub mod readers;
pub mod script;
pub mod stats;
pub mod tables;
pub mod tokenize;

#[cfg(feature = "python")]
mod python;
