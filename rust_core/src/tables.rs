//! Parquet sidecars written beside every output: provenance (one row per output
//! document) and retrieval chunks.
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray, UInt32Array, UInt64Array};
use arrow_schema::{DataType, Field, Schema};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use crate::error::{Error, Result};

const ROWS_PER_BATCH: usize = 8192;

fn writer(path: &Path, schema: Arc<Schema>) -> Result<ArrowWriter<File>> {
    let file = File::create(path).map_err(|e| Error::io(path, e))?;
    let props = WriterProperties::builder().set_compression(Compression::ZSTD(ZstdLevel::try_new(3).unwrap())).build();
    ArrowWriter::try_new(file, schema, Some(props)).map_err(|e| Error::io(path, std::io::Error::other(e)))
}

fn pq_err(path: &Path) -> impl Fn(parquet::errors::ParquetError) -> Error + '_ {
    move |e| Error::io(path, std::io::Error::other(e))
}

pub struct ProvenanceRow {
    pub kind: &'static str,
    pub source: u32,
    pub line: u64,
    pub pair_id: Option<i64>,
    pub tokens: u32,
}

/// Provenance: document_id, kind (mono | bridged | pair_en | pair_xx), source file,
/// line (row for Parquet), pair_id, tokens (EOD included).
pub struct ProvenanceWriter {
    w: ArrowWriter<File>,
    path: PathBuf,
    schema: Arc<Schema>,
    sources: Vec<String>,
    rows: Vec<ProvenanceRow>,
    next_id: u64,
}

impl ProvenanceWriter {
    pub fn create(path: &Path, sources: Vec<String>) -> Result<Self> {
        let schema = Arc::new(Schema::new(vec![
            Field::new("document_id", DataType::UInt64, false),
            Field::new("kind", DataType::Utf8, false),
            Field::new("source", DataType::Utf8, false),
            Field::new("line", DataType::UInt64, false),
            Field::new("pair_id", DataType::Int64, true),
            Field::new("tokens", DataType::UInt32, false),
        ]));
        Ok(ProvenanceWriter { w: writer(path, schema.clone())?, path: path.into(), schema, sources, rows: Vec::new(), next_id: 0 })
    }

    pub fn push(&mut self, row: ProvenanceRow) -> Result<()> {
        self.rows.push(row);
        if self.rows.len() >= ROWS_PER_BATCH {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        let rows = std::mem::take(&mut self.rows);
        let n = rows.len() as u64;
        let cols: Vec<ArrayRef> = vec![
            Arc::new(UInt64Array::from_iter_values(self.next_id..self.next_id + n)),
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.kind))),
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| self.sources[r.source as usize].as_str()))),
            Arc::new(UInt64Array::from_iter_values(rows.iter().map(|r| r.line))),
            Arc::new(Int64Array::from_iter(rows.iter().map(|r| r.pair_id))),
            Arc::new(UInt32Array::from_iter_values(rows.iter().map(|r| r.tokens))),
        ];
        self.next_id += n;
        let batch = RecordBatch::try_new(self.schema.clone(), cols).expect("schema matches");
        self.w.write(&batch).map_err(pq_err(&self.path))
    }

    pub fn finish(mut self) -> Result<()> {
        self.flush()?;
        self.w.close().map(|_| ()).map_err(pq_err(&self.path))
    }
}

/// Chunks: chunk_id, document_id, language, text.
pub struct ChunkWriter {
    w: ArrowWriter<File>,
    path: PathBuf,
    schema: Arc<Schema>,
    rows: Vec<(u64, String, String)>,
    next_id: u64,
}

impl ChunkWriter {
    pub fn create(path: &Path) -> Result<Self> {
        let schema = Arc::new(Schema::new(vec![
            Field::new("chunk_id", DataType::UInt64, false),
            Field::new("document_id", DataType::UInt64, false),
            Field::new("language", DataType::Utf8, false),
            Field::new("text", DataType::Utf8, false),
        ]));
        Ok(ChunkWriter { w: writer(path, schema.clone())?, path: path.into(), schema, rows: Vec::new(), next_id: 0 })
    }

    pub fn push(&mut self, document_id: u64, language: &str, text: String) -> Result<()> {
        self.rows.push((document_id, language.to_owned(), text));
        if self.rows.len() >= ROWS_PER_BATCH {
            self.flush()?;
        }
        Ok(())
    }

    pub fn chunks(&self) -> u64 {
        self.next_id + self.rows.len() as u64
    }

    fn flush(&mut self) -> Result<()> {
        let rows = std::mem::take(&mut self.rows);
        let n = rows.len() as u64;
        let cols: Vec<ArrayRef> = vec![
            Arc::new(UInt64Array::from_iter_values(self.next_id..self.next_id + n)),
            Arc::new(UInt64Array::from_iter_values(rows.iter().map(|r| r.0))),
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.1.as_str()))),
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.2.as_str()))),
        ];
        self.next_id += n;
        let batch = RecordBatch::try_new(self.schema.clone(), cols).expect("schema matches");
        self.w.write(&batch).map_err(pq_err(&self.path))
    }

    pub fn finish(mut self) -> Result<()> {
        self.flush()?;
        self.w.close().map(|_| ()).map_err(pq_err(&self.path))
    }
}
