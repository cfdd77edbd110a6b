//! Every Python binding. One call per stage, the GIL released for its whole run;
//! errors become the exception classes of `xcult.errors`.
use std::path::PathBuf;

use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::analyzers::Analyzer;
use crate::bm25::{self, IndexJob, Searcher};
use crate::datastore::{self, DatastoreJob};
use crate::error::Error;
use crate::job::{BilingualJob, Engine, MonolingualJob};
use crate::{hash, prep};
use crate::script::{Filtered, ScriptFilter};
use crate::tokenize::{TextTokenizer, TokenizerImpl};

fn to_py(e: Error) -> PyErr {
    Python::with_gil(|py| {
        let build = || -> PyResult<PyErr> {
            let m = py.import("xcult.errors")?;
            let msg = e.to_string();
            let exc = match &e {
                Error::Input { path, line, .. } => m.getattr("InputError")?.call1((msg, path.display().to_string(), *line))?,
                Error::Config { key, .. } => m.getattr("ConfigError")?.call1((msg, key.clone()))?,
                Error::Tokenizer { path, .. } => m.getattr("TokenizerError")?.call1((msg, path.display().to_string()))?,
                Error::Io { path, source } => {
                    let cls = match source.kind() {
                        std::io::ErrorKind::NotFound => "MissingPathError",
                        std::io::ErrorKind::PermissionDenied
                        | std::io::ErrorKind::ReadOnlyFilesystem
                        | std::io::ErrorKind::StorageFull
                        | std::io::ErrorKind::QuotaExceeded => "UnwritablePathError",
                        _ => "PathError",
                    };
                    m.getattr(cls)?.call1((msg, path.display().to_string()))?
                }
            };
            Ok(PyErr::from_value(exc))
        };
        build().unwrap_or_else(|err| err)
    })
}

fn parse<T: serde::de::DeserializeOwned>(json: &str, what: &str) -> PyResult<T> {
    serde_json::from_str(json).map_err(|e| to_py(Error::config(what, e.to_string())))
}

/// Builds a monolingual corpus (job JSON in, stats JSON out).
#[pyfunction]
fn prep_monolingual(py: Python<'_>, job_json: &str) -> PyResult<String> {
    let job: MonolingualJob = parse(job_json, "prep job")?;
    let stats = py.allow_threads(|| prep::run_monolingual(&job)).map_err(to_py)?;
    Ok(serde_json::to_string(&stats).expect("stats serialize"))
}

/// Reads one shard of a monolingual unit into a pool directory (job JSON in, counts out).
#[pyfunction]
fn prep_monolingual_shard(py: Python<'_>, job_json: &str) -> PyResult<String> {
    let job: MonolingualJob = parse(job_json, "prep job")?;
    let stats = py.allow_threads(|| prep::ingest_monolingual(&job)).map_err(to_py)?;
    Ok(serde_json::to_string(&stats).expect("stats serialize"))
}

/// Builds one language's with- and without-bridges corpora (job JSON in, stats JSON out).
#[pyfunction]
fn prep_bilingual(py: Python<'_>, job_json: &str) -> PyResult<String> {
    let job: BilingualJob = parse(job_json, "prep job")?;
    let stats = py.allow_threads(|| prep::run_bilingual(&job)).map_err(to_py)?;
    Ok(serde_json::to_string(&stats).expect("stats serialize"))
}

/// Parses a job as Rust sees it and serializes it back, so tests can check that
/// Python's and Rust's definitions agree.
#[pyfunction]
fn roundtrip_job(kind: &str, job_json: &str) -> PyResult<String> {
    let value = match kind {
        "monolingual" => serde_json::to_value(parse::<MonolingualJob>(job_json, "job")?),
        "bilingual" => serde_json::to_value(parse::<BilingualJob>(job_json, "job")?),
        "engine" => serde_json::to_value(parse::<Engine>(job_json, "engine")?),
        "index" => serde_json::to_value(parse::<IndexJob>(job_json, "index job")?),
        "datastore" => serde_json::to_value(parse::<DatastoreJob>(job_json, "datastore job")?),
        other => return Err(to_py(Error::config("kind", format!("unknown job kind {other:?}")))),
    };
    Ok(value.expect("serializable").to_string())
}

#[pyfunction]
fn hash_files(py: Python<'_>, paths: Vec<PathBuf>) -> PyResult<Vec<String>> {
    py.allow_threads(|| hash::hash_files(&paths)).map_err(to_py)
}

/// Filters texts with a script filter; `None` for a dropped text.
#[pyfunction]
#[pyo3(signature = (texts, keep_scripts, min_chars=0))]
fn filter_texts(py: Python<'_>, texts: Vec<String>, keep_scripts: Vec<String>, min_chars: usize) -> PyResult<Vec<Option<String>>> {
    let f = ScriptFilter::new(&keep_scripts, min_chars, "keep_scripts").map_err(to_py)?;
    Ok(py.allow_threads(|| {
        texts
            .iter()
            .map(|t| match f.filter(t) {
                Filtered::Kept { text, .. } => Some(text),
                _ => None,
            })
            .collect()
    }))
}

/// Times the script filter alone on one thread over the lines of a file already in
/// memory: returns bytes in, bytes out and seconds.
#[pyfunction]
fn time_script_filter<'py>(py: Python<'py>, path: PathBuf, keep_scripts: Vec<String>) -> PyResult<Bound<'py, PyDict>> {
    let f = ScriptFilter::new(&keep_scripts, 0, "keep_scripts").map_err(to_py)?;
    let text = std::fs::read_to_string(&path).map_err(|e| to_py(Error::io(&path, e)))?;
    let (bytes_out, secs) = py.allow_threads(|| {
        let start = std::time::Instant::now();
        let mut out = 0usize;
        for line in text.lines() {
            if let Filtered::Kept { text, .. } = f.filter(line) {
                out += text.len();
            }
        }
        (out, start.elapsed().as_secs_f64())
    });
    let d = PyDict::new(py);
    d.set_item("bytes_in", text.len())?;
    d.set_item("bytes_out", bytes_out)?;
    d.set_item("seconds", secs)?;
    Ok(d)
}

/// Encodes texts in parallel; `reference=True` forces the HF `tokenizers` path.
/// Returns the ids and whether the fast path was available.
#[pyfunction]
#[pyo3(signature = (tokenizer_path, eod, texts, reference=false))]
fn encode_texts(
    py: Python<'_>,
    tokenizer_path: PathBuf,
    eod: &str,
    texts: Vec<String>,
    reference: bool,
) -> PyResult<(Vec<Vec<u32>>, bool)> {
    use rayon::prelude::*;
    let implementation = if reference { TokenizerImpl::Reference } else { TokenizerImpl::Auto };
    let tok = TextTokenizer::load(&tokenizer_path, eod, implementation).map_err(to_py)?;
    let ids = py
        .allow_threads(|| {
            texts
                .par_iter()
                .map(|t| {
                    let mut v = Vec::new();
                    tok.encode_into(t, &mut v).map(|_| v)
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .map_err(to_py)?;
    Ok((ids, tok.uses_fast_path()))
}

/// Builds a BM25 index of chunk files (job JSON in, stats JSON out).
#[pyfunction]
fn build_index(py: Python<'_>, job_json: &str) -> PyResult<String> {
    let job: IndexJob = parse(job_json, "index job")?;
    let stats = py.allow_threads(|| bm25::build_index(&job)).map_err(to_py)?;
    Ok(serde_json::to_string(&stats).expect("stats serialize"))
}

/// Writes a corpus's chunks as an infini-gram byte datastore (job JSON in, stats JSON out).
#[pyfunction]
fn write_datastore(py: Python<'_>, job_json: &str) -> PyResult<String> {
    let job: DatastoreJob = parse(job_json, "datastore job")?;
    let stats = py.allow_threads(|| datastore::write_datastore(&job)).map_err(to_py)?;
    Ok(serde_json::to_string(&stats).expect("stats serialize"))
}

/// A byte datastore opened for window counts (`xcult count`).
#[pyclass(frozen, name = "ByteDatastore")]
struct PyByteDatastore(datastore::ByteDatastore);

#[pymethods]
impl PyByteDatastore {
    #[new]
    fn new(dir: PathBuf) -> PyResult<Self> {
        datastore::ByteDatastore::open(&dir).map(PyByteDatastore).map_err(to_py)
    }

    /// Answers with an entity within `window` bytes in the same document (see the Rust doc).
    fn count_near(&self, py: Python<'_>, anchors: Vec<u64>, other: Vec<u8>, window: u64, anchors_are_answers: bool) -> u64 {
        py.allow_threads(|| self.0.count_near(&anchors, &other, window, anchors_are_answers))
    }
}

/// An open BM25 index: open once, search many times.
#[pyclass(frozen)]
struct Bm25Index(Searcher);

#[pymethods]
impl Bm25Index {
    #[new]
    fn new(index_dir: PathBuf, language: &str) -> PyResult<Self> {
        Searcher::open(&index_dir, language).map(Bm25Index).map_err(to_py)
    }

    /// The top `k` (chunk_id, document_id, score) of each query; several queries are
    /// searched in parallel.
    fn search(&self, py: Python<'_>, queries: Vec<String>, k: usize) -> PyResult<Vec<Vec<(u64, u64, f32)>>> {
        let hits = py.allow_threads(|| self.0.search_many(&queries, k)).map_err(to_py)?;
        Ok(hits.into_iter().map(|hs| hs.into_iter().map(|h| (h.chunk_id, h.document_id, h.score)).collect()).collect())
    }

    /// Chunks in the index.
    #[getter]
    fn num_chunks(&self) -> u64 {
        self.0.num_chunks()
    }

    /// Judge-free counts over the whole index: for each (answer, question) pair, the
    /// chunks holding every answer term and the `key_terms` rarest question terms, with
    /// the terms used: (chunks, answer_terms, key_terms).
    fn cooccurrence(&self, py: Python<'_>, pairs: Vec<(String, String)>, key_terms: usize) -> PyResult<Vec<(u64, Vec<String>, Vec<String>)>> {
        let counts = py.allow_threads(|| self.0.cooccurrence_many(&pairs, key_terms)).map_err(to_py)?;
        Ok(counts.into_iter().map(|c| (c.chunks, c.answer_terms, c.key_terms)).collect())
    }
}

/// The index terms of each text under a language's analyzer.
#[pyfunction]
fn analyze(py: Python<'_>, language: &str, texts: Vec<String>) -> PyResult<Vec<Vec<String>>> {
    let a = Analyzer::for_language(language).map_err(to_py)?;
    Ok(py.allow_threads(|| texts.iter().map(|t| a.analyze(t)).collect()))
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(prep_monolingual, m)?)?;
    m.add_function(wrap_pyfunction!(prep_monolingual_shard, m)?)?;
    m.add_function(wrap_pyfunction!(prep_bilingual, m)?)?;
    m.add_function(wrap_pyfunction!(roundtrip_job, m)?)?;
    m.add_function(wrap_pyfunction!(hash_files, m)?)?;
    m.add_function(wrap_pyfunction!(filter_texts, m)?)?;
    m.add_function(wrap_pyfunction!(time_script_filter, m)?)?;
    m.add_function(wrap_pyfunction!(encode_texts, m)?)?;
    m.add_function(wrap_pyfunction!(build_index, m)?)?;
    m.add_function(wrap_pyfunction!(write_datastore, m)?)?;
    m.add_class::<PyByteDatastore>()?;
    m.add_class::<Bm25Index>()?;
    m.add_function(wrap_pyfunction!(analyze, m)?)?;
    Ok(())
}
