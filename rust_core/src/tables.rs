//! Parquet sidecars written beside every output: provenance (one row per output
//! document) and retrieval chunks; and the chunk files read back (index, datastore).
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{Array, ArrayRef, Int64Array, LargeStringArray, RecordBatch, StringArray, UInt32Array, UInt64Array};
use arrow_schema::{DataType, Field, Schema};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use crate::error::{Error, Result};

const ROWS_PER_BATCH: usize = 8192;

fn writer(path: &Path, schema: Arc<Schema>) -> Result<ArrowWriter<File>> {
    let file = File::create(path).map_err(|e| Error::io(path, e))?;
    // Level 1: the chunk files are read back once, by the index; level 3 made writing
    // them about a third slower for files about a tenth smaller.
    let props = WriterProperties::builder().set_compression(Compression::ZSTD(ZstdLevel::try_new(1).unwrap())).build();
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

/// A string column as written by the prep engine (Utf8) or by polars (LargeUtf8).
enum Strings<'a> {
    Small(&'a StringArray),
    Large(&'a LargeStringArray),
}

impl<'a> Strings<'a> {
    fn of(col: &'a ArrayRef) -> Option<Self> {
        let any = col.as_any();
        any.downcast_ref::<StringArray>().map(Strings::Small).or_else(|| any.downcast_ref::<LargeStringArray>().map(Strings::Large))
    }
    fn value(&self, i: usize) -> &'a str {
        match self {
            Strings::Small(a) => a.value(i),
            Strings::Large(a) => a.value(i),
        }
    }
}

/// One row of a chunk file.
pub struct Chunk<'a> {
    pub chunk_id: u64,
    pub document_id: u64,
    pub text: &'a str,
}

/// Calls `f` on every chunk of `files`, in file and row order, whose `language` is one of
/// `keep_languages` (empty: all); returns how many chunks the language test skipped.
pub fn for_each_chunk<P: AsRef<Path>>(files: &[P], keep_languages: &[String], mut f: impl FnMut(&Path, Chunk) -> Result<()>) -> Result<u64> {
    let mut skipped = 0u64;
    for path in files {
        let path = path.as_ref();
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let reader = ParquetRecordBatchReaderBuilder::try_new(file)
            .and_then(|b| b.build())
            .map_err(|e| Error::input(path, None, format!("chunk Parquet: {e}")))?;
        for batch in reader {
            let batch = batch.map_err(|e| Error::input(path, None, format!("chunk Parquet: {e}")))?;
            let col = |name: &str| batch.column_by_name(name).ok_or_else(|| Error::input(path, None, format!("chunk Parquet has no `{name}` column")));
            let ids = col("chunk_id")?.as_any().downcast_ref::<UInt64Array>().ok_or_else(|| Error::input(path, None, "chunk_id is not u64"))?;
            let docs = col("document_id")?.as_any().downcast_ref::<UInt64Array>().ok_or_else(|| Error::input(path, None, "document_id is not u64"))?;
            let texts = Strings::of(col("text")?).ok_or_else(|| Error::input(path, None, "text is not a string column"))?;
            let langs = Strings::of(col("language")?).ok_or_else(|| Error::input(path, None, "language is not a string column"))?;
            for i in 0..batch.num_rows() {
                if !keep_languages.is_empty() && !keep_languages.iter().any(|l| l == langs.value(i)) {
                    skipped += 1;
                    continue;
                }
                f(path, Chunk { chunk_id: ids.value(i), document_id: docs.value(i), text: texts.value(i) })?;
            }
        }
    }
    Ok(skipped)
}
