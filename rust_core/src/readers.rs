//! Streaming readers. A reader yields raw records in input order (file, line) in
//! batches bounded by bytes; decoding (UTF-8, JSON) happens later, in parallel, and
//! names the file and line of any record it cannot decode.
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use arrow_array::{Array, LargeStringArray, StringArray, StringViewArray};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ProjectionMask;
use serde::{Deserialize, Serialize};

use crate::error::{Error, InputKind, IoContext, Result};

/// How monolingual documents are stored.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "format", rename_all = "lowercase", deny_unknown_fields)]
pub enum DocFormat {
    /// One JSON object per line (also `.jsonl.gz`, `.jsonl.zst`).
    Jsonl { text_field: String },
    /// Parquet with a string column.
    Parquet { text_field: String },
    /// One document per line of plain text (also compressed).
    Text,
}

/// How parallel sentence pairs are stored.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "format", rename_all = "lowercase", deny_unknown_fields)]
pub enum PairFormat {
    /// `en<TAB>xx` per line, or `xx<TAB>en` with `en_first = false`.
    Tsv { en_first: bool },
    /// One JSON object per line with one field per side.
    Jsonl { en_field: String, xx_field: String },
    /// Two files aligned by line: `paths` holds English files, `xx_paths` the others.
    Aligned { xx_paths: Vec<PathBuf> },
}

/// One record as read, not yet decoded.
pub struct Raw {
    pub file: u32,
    /// 1-based line, or row for Parquet.
    pub line: u64,
    pub data: RawData,
}

pub enum RawData {
    Bytes(Vec<u8>),
    Text(String),
    Null,
    Pair(Vec<u8>, Vec<u8>),
}

impl RawData {
    fn len(&self) -> usize {
        match self {
            RawData::Bytes(b) => b.len(),
            RawData::Text(t) => t.len(),
            RawData::Null => 0,
            RawData::Pair(a, b) => a.len() + b.len(),
        }
    }
}

/// Opens a file, decompressing by extension.
pub fn open_lines(path: &Path) -> Result<Box<dyn BufRead + Send>> {
    let file = File::open(path).at(path)?;
    let name = path.to_string_lossy();
    let inner: Box<dyn Read + Send> = if name.ends_with(".gz") {
        Box::new(flate2::read::MultiGzDecoder::new(file))
    } else if name.ends_with(".zst") {
        Box::new(zstd::stream::read::Decoder::new(file).at(path)?)
    } else {
        Box::new(file)
    };
    Ok(Box::new(BufReader::with_capacity(1 << 20, inner)))
}

/// Reads one line without its line terminator; `None` at end of file.
fn next_line(r: &mut dyn BufRead, path: &Path, buf: &mut Vec<u8>) -> Result<Option<Vec<u8>>> {
    buf.clear();
    if r.read_until(b'\n', buf).at(path)? == 0 {
        return Ok(None);
    }
    if buf.last() == Some(&b'\n') {
        buf.pop();
        if buf.last() == Some(&b'\r') {
            buf.pop();
        }
    }
    Ok(Some(std::mem::take(buf)))
}

/// Task `index` of `count` building one monolingual unit. The inputs, laid end to end,
/// are cut into `count` equal byte ranges; a task reads the records that start in its
/// range (lines of uncompressed JSONL/text; a compressed or Parquet file whole, in the
/// range where it starts), with their line numbers in the whole file.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

/// Which part of a file a task reads.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Part {
    Whole,
    /// The lines that start in these bytes of an uncompressed text file.
    Bytes(u64, u64),
    Nothing,
}

fn splittable(path: &Path, format: &DocFormat) -> bool {
    let name = path.to_string_lossy();
    !matches!(format, DocFormat::Parquet { .. }) && !name.ends_with(".gz") && !name.ends_with(".zst")
}

/// Each file's part for `shard` (see [`Shard`]).
fn shard_parts(paths: &[PathBuf], format: &DocFormat, shard: Shard) -> Result<Vec<Part>> {
    let sizes = paths.iter().map(|p| Ok(std::fs::metadata(p).at(p)?.len())).collect::<Result<Vec<u64>>>()?;
    let total: u128 = sizes.iter().map(|&z| z as u128).sum();
    let bound = |k: u32| (total * k as u128 / shard.count as u128) as u64;
    let (lo, hi) = (bound(shard.index), if shard.index + 1 == shard.count { u64::MAX } else { bound(shard.index + 1) });
    let mut at = 0u64;
    let mut parts = Vec::new();
    for (path, &size) in paths.iter().zip(&sizes) {
        parts.push(if !splittable(path, format) || size == 0 {
            if (lo..hi).contains(&at) { Part::Whole } else { Part::Nothing }
        } else {
            let (s, e) = (lo.max(at), hi.min(at + size));
            if s < e { Part::Bytes(s - at, e - at) } else { Part::Nothing }
        });
        at += size;
    }
    Ok(parts)
}

/// The lines of an uncompressed file that start in bytes `start..end`, numbered as in
/// the whole file.
fn read_lines_in(path: &Path, start: u64, end: u64, mut each: impl FnMut(u64, Vec<u8>) -> Result<bool>) -> Result<()> {
    use std::io::{Seek, SeekFrom};
    let mut f = File::open(path).at(path)?;
    let mut first = start;
    if start > 0 {
        let mut prev = [0u8; 1];
        f.seek(SeekFrom::Start(start - 1)).at(path)?;
        f.read_exact(&mut prev).at(path)?;
        if prev[0] != b'\n' {
            let mut r = BufReader::new(&mut f);
            first += r.read_until(b'\n', &mut Vec::new()).at(path)? as u64;  // the rest of a line that started before
        }
    }
    // Line numbers count the newlines before the first line read.
    f.seek(SeekFrom::Start(0)).at(path)?;
    let mut before = 0u64;
    let mut left = first;
    let mut buf = vec![0u8; 1 << 20];
    while left > 0 {
        let n = f.read(&mut buf[..left.min(1 << 20) as usize]).at(path)?;
        if n == 0 {
            break;
        }
        before += buf[..n].iter().filter(|&&b| b == b'\n').count() as u64;
        left -= n as u64;
    }
    f.seek(SeekFrom::Start(first)).at(path)?;
    let mut r = BufReader::with_capacity(1 << 20, f);
    let (mut pos, mut line) = (first, before);
    let mut buf = Vec::new();
    while pos < end {
        buf.clear();
        let n = r.read_until(b'\n', &mut buf).at(path)?;
        if n == 0 {
            break;
        }
        pos += n as u64;
        line += 1;
        if buf.last() == Some(&b'\n') {
            buf.pop();
            if buf.last() == Some(&b'\r') {
                buf.pop();
            }
        }
        if !each(line, std::mem::take(&mut buf))? {
            break;
        }
    }
    Ok(())
}

/// Calls `sink` with batches of about `batch_bytes` until the inputs end or the sink
/// answers `false`. Every file read whole must hold at least one record; with a
/// `shard`, only its part of the inputs is read.
pub fn read_docs(
    paths: &[PathBuf],
    format: &DocFormat,
    batch_bytes: usize,
    shard: Option<Shard>,
    mut sink: impl FnMut(Vec<Raw>) -> Result<bool>,
) -> Result<()> {
    let mut batch = Vec::new();
    let mut size = 0usize;
    let mut push = |raw: Raw, batch: &mut Vec<Raw>, size: &mut usize| -> Result<bool> {
        *size += raw.data.len() + 64;
        batch.push(raw);
        if *size >= batch_bytes {
            *size = 0;
            return sink(std::mem::take(batch));
        }
        Ok(true)
    };
    let parts = match shard {
        Some(sh) => shard_parts(paths, format, sh)?,
        None => vec![Part::Whole; paths.len()],
    };
    for (i, path) in paths.iter().enumerate() {
        let file = i as u32;
        let mut records = 0u64;
        match (parts[i], format) {
            (Part::Nothing, _) => continue,
            (Part::Bytes(start, end), _) => {
                let mut stopped = false;
                read_lines_in(path, start, end, |line, data| {
                    let go = push(Raw { file, line, data: RawData::Bytes(data) }, &mut batch, &mut size)?;
                    stopped = !go;
                    Ok(go)
                })?;
                if stopped {
                    return Ok(());
                }
                continue;
            }
            (Part::Whole, DocFormat::Jsonl { .. } | DocFormat::Text) => {
                let mut reader = open_lines(path)?;
                let mut buf = Vec::new();
                while let Some(line) = next_line(reader.as_mut(), path, &mut buf)? {
                    records += 1;
                    let raw = Raw { file, line: records, data: RawData::Bytes(line) };
                    if !push(raw, &mut batch, &mut size)? {
                        return Ok(());
                    }
                }
            }
            (Part::Whole, DocFormat::Parquet { text_field }) => {
                let f = File::open(path).at(path)?;
                let parquet_err = |e: parquet::errors::ParquetError| Error::input(path, None, format!("parquet: {e}"));
                let builder = ParquetRecordBatchReaderBuilder::try_new(f).map_err(parquet_err)?;
                let schema = builder.parquet_schema();
                let col = (0..schema.num_columns())
                    .find(|&c| schema.column(c).path().string() == *text_field)
                    .ok_or_else(|| Error::input(path, None, format!("no column {text_field:?}")))?;
                let mask = ProjectionMask::leaves(schema, [col]);
                let reader = builder.with_projection(mask).with_batch_size(1024).build().map_err(parquet_err)?;
                for rb in reader {
                    let rb = rb.map_err(|e| Error::input(path, Some(records + 1), format!("parquet: {e}")))?;
                    let column = rb.column(0);
                    let texts = string_column(column.as_ref())
                        .ok_or_else(|| Error::input(path, None, format!("column {text_field:?} is not a string column")))?;
                    for t in texts {
                        records += 1;
                        let data = t.map(|s| RawData::Text(s.to_owned())).unwrap_or(RawData::Null);
                        if !push(Raw { file, line: records, data }, &mut batch, &mut size)? {
                            return Ok(());
                        }
                    }
                }
            }
        }
        if records == 0 {
            return Err(Error::input(path, None, "empty input: no documents"));
        }
    }
    if !batch.is_empty() {
        sink(batch)?;
    }
    Ok(())
}

fn string_column(a: &dyn Array) -> Option<Vec<Option<&str>>> {
    if let Some(s) = a.as_any().downcast_ref::<StringArray>() {
        return Some(s.iter().collect());
    }
    if let Some(s) = a.as_any().downcast_ref::<LargeStringArray>() {
        return Some(s.iter().collect());
    }
    a.as_any().downcast_ref::<StringViewArray>().map(|s| s.iter().collect())
}

/// Like [`read_docs`] for parallel data; `Aligned` reads `paths[i]` beside `xx_paths[i]`.
pub fn read_pairs(
    paths: &[PathBuf],
    format: &PairFormat,
    batch_bytes: usize,
    mut sink: impl FnMut(Vec<Raw>) -> Result<bool>,
) -> Result<()> {
    let mut batch = Vec::new();
    let mut size = 0usize;
    if let PairFormat::Aligned { xx_paths } = format {
        if xx_paths.len() != paths.len() {
            return Err(Error::config(
                "parallel.xx_paths",
                format!("{} English files but {} aligned files", paths.len(), xx_paths.len()),
            ));
        }
    }
    for (i, path) in paths.iter().enumerate() {
        let file = i as u32;
        let mut reader = open_lines(path)?;
        let mut other = match format {
            PairFormat::Aligned { xx_paths } => Some((open_lines(&xx_paths[i])?, &xx_paths[i])),
            _ => None,
        };
        let (mut buf, mut buf2) = (Vec::new(), Vec::new());
        let mut records = 0u64;
        loop {
            let line = next_line(reader.as_mut(), path, &mut buf)?;
            let data = match (&mut other, line) {
                (Some((r2, p2)), line) => {
                    let line2 = next_line(r2.as_mut(), p2, &mut buf2)?;
                    match (line, line2) {
                        (Some(a), Some(b)) => RawData::Pair(a, b),
                        (None, None) => break,
                        (a, _) => {
                            let (n1, n2) = if a.is_some() {
                                (records + 1 + count_lines(reader.as_mut(), path)?, records)
                            } else {
                                (records, records + 1 + count_lines(r2.as_mut(), p2)?)
                            };
                            return Err(Error::input(
                                path,
                                None,
                                format!(
                                    "parallel files of unequal length: {} has {n1} lines, {} has {n2} lines",
                                    path.display(),
                                    p2.display()
                                ),
                            ));
                        }
                    }
                }
                (None, Some(a)) => RawData::Bytes(a),
                (None, None) => break,
            };
            records += 1;
            size += data.len() + 64;
            batch.push(Raw { file, line: records, data });
            if size >= batch_bytes {
                size = 0;
                if !sink(std::mem::take(&mut batch))? {
                    return Ok(());
                }
            }
        }
        if records == 0 {
            return Err(Error::input(path, None, "empty input: no sentence pairs"));
        }
    }
    if !batch.is_empty() {
        sink(batch)?;
    }
    Ok(())
}

fn count_lines(r: &mut dyn BufRead, path: &Path) -> Result<u64> {
    let mut n = 0;
    let mut buf = Vec::new();
    while next_line(r, path, &mut buf)?.is_some() {
        n += 1;
    }
    Ok(n)
}

fn utf8(bytes: Vec<u8>, path: &Path, line: u64) -> Result<String> {
    String::from_utf8(bytes).map_err(|e| {
        Error::record(path, Some(line), InputKind::InvalidUtf8, format!("invalid UTF-8 at byte {} of the line", e.utf8_error().valid_up_to()))
    })
}

/// Takes the string `field` out of a record (a move, not a copy of the text).
fn json_field(obj: &mut serde_json::Map<String, serde_json::Value>, field: &str, path: &Path, line: u64) -> Result<String> {
    match obj.remove(field) {
        Some(serde_json::Value::String(s)) => Ok(s),
        Some(_) => Err(Error::record(path, Some(line), InputKind::NotAString, format!("field {field:?} is not a string"))),
        None => Err(Error::record(path, Some(line), InputKind::MissingTextField, format!("missing text field {field:?}"))),
    }
}

fn json_object(bytes: &[u8], path: &Path, line: u64) -> Result<serde_json::Map<String, serde_json::Value>> {
    // serde_json checks the UTF-8 of every string it reads and JSON's syntax outside
    // strings is ASCII, so a parsed line is valid UTF-8; a failed one is checked again
    // here to name invalid UTF-8 as such, at its byte.
    match serde_json::from_slice::<serde_json::Value>(bytes) {
        Ok(serde_json::Value::Object(o)) => Ok(o),
        Ok(_) => Err(Error::record(path, Some(line), InputKind::NotAnObject, "JSON line is not an object")),
        Err(e) => {
            if std::str::from_utf8(bytes).is_err() {
                utf8(bytes.to_vec(), path, line)?;
            }
            Err(Error::record(path, Some(line), InputKind::MalformedJson, format!("malformed JSON: {e}")))
        }
    }
}

/// Decodes a document record; `Ok(None)` for a blank line.
pub fn decode_doc(raw: Raw, format: &DocFormat, path: &Path) -> Result<Option<String>> {
    let line = raw.line;
    match (raw.data, format) {
        (RawData::Bytes(b), _) if b.iter().all(u8::is_ascii_whitespace) => Ok(None),
        (RawData::Bytes(b), DocFormat::Jsonl { text_field }) => {
            json_field(&mut json_object(&b, path, line)?, text_field, path, line).map(Some)
        }
        (RawData::Bytes(b), _) => utf8(b, path, line).map(Some),
        (RawData::Text(t), _) => Ok(Some(t)),
        (RawData::Null, _) => Err(Error::record(path, Some(line), InputKind::NullText, "null text")),
        (RawData::Pair(..), _) => unreachable!("pairs come from read_pairs"),
    }
}

/// Decodes a pair record into (English, other); `Ok(None)` for a blank line.
pub fn decode_pair(raw: Raw, format: &PairFormat, path: &Path) -> Result<Option<(String, String)>> {
    let line = raw.line;
    match (raw.data, format) {
        (RawData::Pair(a, b), PairFormat::Aligned { xx_paths }) => {
            Ok(Some((utf8(a, path, line)?, utf8(b, &xx_paths[raw.file as usize], line)?)))
        }
        (RawData::Bytes(b), _) if b.iter().all(u8::is_ascii_whitespace) => Ok(None),
        (RawData::Bytes(b), PairFormat::Tsv { en_first }) => {
            let s = utf8(b, path, line)?;
            let fields: Vec<&str> = s.split('\t').collect();
            if fields.len() != 2 {
                return Err(Error::record(path, Some(line), InputKind::NotTwoFields, format!("expected 2 tab-separated fields, found {}", fields.len())));
            }
            let (en, xx) = if *en_first { (fields[0], fields[1]) } else { (fields[1], fields[0]) };
            Ok(Some((en.to_owned(), xx.to_owned())))
        }
        (RawData::Bytes(b), PairFormat::Jsonl { en_field, xx_field }) => {
            let mut o = json_object(&b, path, line)?;
            Ok(Some((json_field(&mut o, en_field, path, line)?, json_field(&mut o, xx_field, path, line)?)))
        }
        _ => unreachable!("record kind does not match the pair format"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn collect_docs(paths: &[PathBuf], format: &DocFormat) -> Result<Vec<Result<Option<String>>>> {
        let mut out = Vec::new();
        read_docs(paths, format, 10, None, |batch| {
            for raw in batch {
                let p = paths[raw.file as usize].clone();
                out.push(decode_doc(raw, format, &p));
            }
            Ok(true)
        })?;
        Ok(out)
    }

    fn records(paths: &[PathBuf], format: &DocFormat, shard: Option<Shard>) -> Vec<(u32, u64, Vec<u8>)> {
        let mut out = Vec::new();
        read_docs(paths, format, 7, shard, |batch| {
            for raw in batch {
                let data = match raw.data {
                    RawData::Bytes(b) => b,
                    _ => unreachable!(),
                };
                out.push((raw.file, raw.line, data));
            }
            Ok(true)
        })
        .unwrap();
        out
    }

    #[test]
    fn shards_read_every_record_once_with_its_whole_file_line() {
        let dir = std::env::temp_dir().join(format!("xcult-shards-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let lines: Vec<String> = (0..98).map(|i| if i % 13 == 5 { String::new() } else { "x".repeat(i * 7 % 23) + &i.to_string() }).collect();
        let a = dir.join("a.txt");
        std::fs::write(&a, lines[..40].join("\n") + "\n").unwrap();
        let b = dir.join("b.txt.gz"); // compressed: read whole by the task where it starts
        let mut gz = flate2::write::GzEncoder::new(std::fs::File::create(&b).unwrap(), flate2::Compression::default());
        gz.write_all((lines[40..60].join("\r\n") + "\r\n").as_bytes()).unwrap();
        gz.finish().unwrap();
        let c = dir.join("c.txt"); // no final newline
        std::fs::write(&c, lines[60..].join("\n")).unwrap();
        let paths = vec![a, b, c];
        let whole = records(&paths, &DocFormat::Text, None);
        assert_eq!(whole.len(), 98);
        for count in [1, 2, 3, 5, 8, 40, 500] {
            let mut joined = Vec::new();
            for index in 0..count {
                joined.extend(records(&paths, &DocFormat::Text, Some(Shard { index, count })));
            }
            assert_eq!(joined, whole, "{count} shards");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn jsonl_plain_gz_and_zst_read_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let body = "{\"text\": \"one\"}\n{\"text\": \"二\", \"id\": 2}\n";
        let plain = dir.path().join("a.jsonl");
        std::fs::write(&plain, body).unwrap();
        let gz = dir.path().join("a.jsonl.gz");
        let mut enc = flate2::write::GzEncoder::new(File::create(&gz).unwrap(), flate2::Compression::fast());
        enc.write_all(body.as_bytes()).unwrap();
        enc.finish().unwrap();
        let zst = dir.path().join("a.jsonl.zst");
        std::fs::write(&zst, zstd::encode_all(body.as_bytes(), 3).unwrap()).unwrap();
        let fmt = DocFormat::Jsonl { text_field: "text".into() };
        for p in [plain, gz, zst] {
            let docs: Vec<_> = collect_docs(&[p], &fmt).unwrap().into_iter().map(|d| d.unwrap().unwrap()).collect();
            assert_eq!(docs, vec!["one", "二"]);
        }
    }

    #[test]
    fn bad_records_name_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bad.jsonl");
        let mut bytes = b"{\"text\": \"ok\"}\n{\"text\": \"cut\n{\"body\": \"x\"}\n".to_vec();
        bytes.extend_from_slice(b"{\"text\": \"\xff\xfe\"}\n");
        std::fs::write(&p, bytes).unwrap();
        let docs = collect_docs(&[p.clone()], &DocFormat::Jsonl { text_field: "text".into() }).unwrap();
        assert!(docs[0].is_ok());
        let errs: Vec<String> = docs[1..].iter().map(|d| d.as_ref().unwrap_err().to_string()).collect();
        assert!(errs[0].contains("bad.jsonl:2") && errs[0].contains("malformed JSON"), "{}", errs[0]);
        assert!(errs[1].contains("bad.jsonl:3") && errs[1].contains("missing text field"), "{}", errs[1]);
        assert!(errs[2].contains("bad.jsonl:4") && errs[2].contains("invalid UTF-8"), "{}", errs[2]);
    }

    #[test]
    fn empty_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("empty.txt");
        std::fs::write(&p, "").unwrap();
        let err = collect_docs(&[p], &DocFormat::Text).unwrap_err().to_string();
        assert!(err.contains("empty.txt") && err.contains("empty input"), "{err}");
    }

    #[test]
    fn aligned_files_of_unequal_length_name_both_and_both_counts() {
        let dir = tempfile::tempdir().unwrap();
        let en = dir.path().join("p.en");
        let zh = dir.path().join("p.zh");
        std::fs::write(&en, "a\nb\nc\n").unwrap();
        std::fs::write(&zh, "甲\n乙\n").unwrap();
        let fmt = PairFormat::Aligned { xx_paths: vec![zh] };
        let err = read_pairs(&[en], &fmt, 1 << 20, |_| Ok(true)).unwrap_err().to_string();
        assert!(err.contains("p.en has 3 lines") && err.contains("p.zh has 2 lines"), "{err}");
    }

    #[test]
    fn tsv_and_jsonl_pairs() {
        let dir = tempfile::tempdir().unwrap();
        let tsv = dir.path().join("p.tsv");
        std::fs::write(&tsv, "hello\t你好\nbad line\n").unwrap();
        let fmt = PairFormat::Tsv { en_first: true };
        let mut got = Vec::new();
        read_pairs(&[tsv.clone()], &fmt, 1, |b| {
            got.extend(b.into_iter().map(|r| decode_pair(r, &fmt, &tsv)));
            Ok(true)
        })
        .unwrap();
        assert_eq!(got[0].as_ref().unwrap().as_ref().unwrap(), &("hello".to_string(), "你好".to_string()));
        assert!(got[1].as_ref().unwrap_err().to_string().contains("p.tsv:2"));
        let jl = dir.path().join("p.jsonl");
        std::fs::write(&jl, "{\"en\": \"hi\", \"zh\": \"嗨\"}\n").unwrap();
        let fmt = PairFormat::Jsonl { en_field: "en".into(), xx_field: "zh".into() };
        let mut got = Vec::new();
        read_pairs(&[jl.clone()], &fmt, 1, |b| {
            got.extend(b.into_iter().map(|r| decode_pair(r, &fmt, &jl).unwrap().unwrap()));
            Ok(true)
        })
        .unwrap();
        assert_eq!(got, vec![("hi".to_string(), "嗨".to_string())]);
    }
}
