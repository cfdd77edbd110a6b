//! Precomputed BM25 impacts beside a tantivy index, and exact top-k queries over them.
//!
//! tantivy scores postings at query time (block-max WAND over a union of term scorers);
//! retrieval queries are whole statements of 6-15 words, half of them frequent, and
//! that prunes little. `impacts.bin` holds, for every term of the single-segment index
//! in term-ordinal order, its postings as (doc, score) with tantivy's own BM25 score
//! (`Bm25Weight`: the same idf, the same quantised field norms) and the term's largest
//! score. A query adds its rarest terms' impacts into an accumulator, term at a time;
//! once the k-th best partial score is above what all remaining terms together could
//! add (MaxScore), documents not seen yet cannot enter the top k, so the remaining
//! terms only update the documents seen, which are dropped as soon as they cannot reach
//! the k-th score either. The result is the exact top k by (score, chunk id).
//!
//! File layout (little-endian): a 64-byte header (magic, the segment's id in hex, documents,
//! terms, postings), postings as (u32 doc, f32 score) pairs grouped by term, then u64
//! offsets (terms + 1) and f32 maxima (terms).
use std::cell::RefCell;
use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use tantivy::postings::Postings;
use tantivy::query::Bm25Weight;
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::{DocSet, SegmentReader, TERMINATED};

use crate::error::{Error, Result};

#[cfg(target_endian = "big")]
compile_error!("impacts.bin is read in place as little-endian");

pub const FILE: &str = "impacts.bin";
const MAGIC: &[u8; 8] = b"XCIMP\x01\0\0";
const HEADER: usize = 64;
/// Relative slack on "cannot reach the k-th score": partial sums are f32 and added in a
/// different order than the bound, so the bound is widened by far more than rounding.
const SLACK: f32 = 1e-5;

/// Galloping costs a few probes per seen document, a pass one step per posting.
const GALLOP_RATIO: usize = 16;

#[repr(C)]
#[derive(Clone, Copy, Debug)]
struct Posting {
    doc: u32,
    score: f32,
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |e| Error::io(path, e)
}

fn tantivy_err(path: &Path) -> impl Fn(tantivy::TantivyError) -> Error + '_ {
    move |e| Error::input(path, None, format!("index: {e}"))
}

/// The segment's id as its 32 hex digits.
fn segment_id(segment: &SegmentReader) -> [u8; 32] {
    segment.segment_id().uuid_string().as_bytes().try_into().expect("a segment id is 32 hex digits")
}

/// Writes `impacts.bin` into `dir` from the index's only segment (`None`: an empty index).
pub fn write(dir: &Path, segment: Option<&SegmentReader>, field: Field) -> Result<()> {
    let path = dir.join(FILE);
    let mut out = BufWriter::with_capacity(1 << 20, File::create(&path).map_err(io_err(&path))?);
    out.write_all(&[0u8; HEADER]).map_err(io_err(&path))?;
    let (mut offsets, mut maxima, mut id, mut n_docs) = (vec![0u64], Vec::new(), [0u8; 32], 0u32);
    if let Some(seg) = segment {
        id = segment_id(seg);
        n_docs = seg.max_doc();
        let inverted = seg.inverted_index(field).map_err(tantivy_err(&path))?;
        let norms = seg.get_fieldnorms_reader(field).map_err(tantivy_err(&path))?;
        // tantivy's statistics for a single segment with no deletions.
        let avg_fieldnorm = inverted.total_num_tokens() as f32 / seg.num_docs() as f32;
        let mut terms = inverted.terms().stream().map_err(io_err(&path))?;
        let mut n = 0u64;
        while terms.advance() {
            let info = terms.value();
            let weight = Bm25Weight::for_one_term_without_explain(info.doc_freq as u64, seg.num_docs() as u64, avg_fieldnorm);
            let mut postings = inverted.read_postings_from_terminfo(info, IndexRecordOption::WithFreqs).map_err(io_err(&path))?;
            let mut max = 0f32;
            let mut doc = postings.doc();
            while doc != TERMINATED {
                let score = weight.score(norms.fieldnorm_id(doc), postings.term_freq());
                max = max.max(score);
                out.write_all(&doc.to_le_bytes()).and_then(|_| out.write_all(&score.to_le_bytes())).map_err(io_err(&path))?;
                n += 1;
                doc = postings.advance();
            }
            offsets.push(n);
            maxima.push(max);
        }
    }
    for o in &offsets {
        out.write_all(&o.to_le_bytes()).map_err(io_err(&path))?;
    }
    for m in &maxima {
        out.write_all(&m.to_le_bytes()).map_err(io_err(&path))?;
    }
    let mut header = Vec::with_capacity(HEADER);
    header.extend_from_slice(MAGIC);
    header.extend_from_slice(&id);
    header.extend_from_slice(&(n_docs as u64).to_le_bytes());
    header.extend_from_slice(&(maxima.len() as u64).to_le_bytes());
    header.extend_from_slice(&offsets[offsets.len() - 1].to_le_bytes());
    header.resize(HEADER, 0);
    let mut file = out.into_inner().map_err(|e| Error::io(&path, e.into_error()))?;
    file.seek(SeekFrom::Start(0)).and_then(|_| file.write_all(&header)).and_then(|_| file.sync_all()).map_err(io_err(&path))?;
    Ok(())
}

/// Per-thread scratch: a score per document (zero = not seen) and the documents seen.
struct Scratch {
    acc: Vec<f32>,
    seen: Vec<u32>,
    values: Vec<f32>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = const { RefCell::new(Scratch { acc: Vec::new(), seen: Vec::new(), values: Vec::new() }) };
}

pub struct Impacts {
    path: PathBuf,
    map: memmap2::Mmap,
    n_docs: usize,
    n_terms: usize,
    n_postings: usize,
}

impl Impacts {
    /// Opens `dir/impacts.bin`, checking it belongs to `segment` (`None`: empty index).
    pub fn open(dir: &Path, segment: Option<&SegmentReader>) -> Result<Self> {
        let path = dir.join(FILE);
        let stale = |why: &str| Error::input(&path, None, format!("{why}: rebuild the index (`xcult index --force`)"));
        let file = File::open(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => stale("no precomputed impacts (an index from an older xcult)"),
            _ => Error::io(&path, e),
        })?;
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(io_err(&path))?;
        if map.len() < HEADER || &map[..8] != MAGIC {
            return Err(stale("not an xcult impacts file of this version"));
        }
        let u64_at = |i: usize| u64::from_le_bytes(map[i..i + 8].try_into().unwrap()) as usize;
        let (n_docs, n_terms, n_postings) = (u64_at(40), u64_at(48), u64_at(56));
        if map.len() != HEADER + 8 * n_postings + 8 * (n_terms + 1) + 4 * n_terms {
            return Err(stale("truncated"));
        }
        let (id, docs) = segment.map_or(([0u8; 32], 0), |s| (segment_id(s), s.max_doc() as usize));
        if map[8..40] != id || n_docs != docs {
            return Err(stale("built for another segment of this index"));
        }
        Ok(Impacts { path, map, n_docs, n_terms, n_postings })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn postings(&self, ord: usize) -> &[Posting] {
        let offsets = self.offsets();
        let (a, b) = (offsets[ord] as usize, offsets[ord + 1] as usize);
        // The map is page-aligned and postings start at byte 64: 4-byte aligned pairs.
        let all = unsafe { std::slice::from_raw_parts(self.map[HEADER..].as_ptr() as *const Posting, self.n_postings) };
        &all[a..b]
    }

    fn offsets(&self) -> &[u64] {
        let at = HEADER + 8 * self.n_postings;
        unsafe { std::slice::from_raw_parts(self.map[at..].as_ptr() as *const u64, self.n_terms + 1) }
    }

    fn max_score(&self, ord: usize) -> f32 {
        let at = HEADER + 8 * self.n_postings + 8 * (self.n_terms + 1) + 4 * ord;
        f32::from_le_bytes(self.map[at..at + 4].try_into().unwrap())
    }

    /// The exact top `k` documents of the union of terms `ords` (term ordinals, distinct)
    /// by summed score, best first; ties go to the lower `tie_key(doc)` (the chunk id).
    pub fn top_k(&self, ords: &[u64], k: usize, tie_key: impl Fn(u32) -> u64) -> Vec<(u32, f32)> {
        if k == 0 || ords.is_empty() {
            return Vec::new();
        }
        let mut terms: Vec<(&[Posting], f32)> = ords.iter().map(|&o| (self.postings(o as usize), self.max_score(o as usize))).collect();
        terms.sort_by_key(|(p, _)| p.len());
        // rest[j]: the most terms j.. can add to one document.
        let mut rest = vec![0f32; terms.len() + 1];
        for j in (0..terms.len()).rev() {
            rest[j] = rest[j + 1] + terms[j].1;
        }
        let reach = |partial: f32, j: usize| (partial + rest[j]) * (1.0 + SLACK);
        SCRATCH.with(|cell| {
            let Scratch { acc, seen, values } = &mut *cell.borrow_mut();
            if acc.len() < self.n_docs {
                acc.resize(self.n_docs, 0.0);
            }
            seen.clear();
            let mut theta: Option<f32> = None; // set once unseen documents are out
            for (j, (postings, _)) in terms.iter().enumerate() {
                if theta.is_none() && seen.len() >= k && postings.len() > seen.len() {
                    // Worth checking only when this term costs more than the check.
                    let t = kth_largest(seen, acc, values, k);
                    if reach(0.0, j) < t {
                        theta = Some(t);
                        drop_unreachable(seen, acc, t, |p| reach(p, j));
                        seen.sort_unstable(); // the few left, for galloping
                    }
                }
                match theta {
                    None => {
                        for p in *postings {
                            let a = &mut acc[p.doc as usize];
                            if *a == 0.0 {
                                seen.push(p.doc); // scores are > 0: zero means unseen
                            }
                            *a += p.score;
                        }
                    }
                    Some(t) => {
                        add_to_seen(postings, seen, acc);
                        let t = t.max(kth_largest(seen, acc, values, k));
                        theta = Some(t);
                        drop_unreachable(seen, acc, t, |p| reach(p, j + 1));
                    }
                }
            }
            let mut hits: Vec<(u32, f32)> = seen.iter().map(|&d| (d, acc[d as usize])).collect();
            for &d in seen.iter() {
                acc[d as usize] = 0.0;
            }
            let order = |a: &(u32, f32), b: &(u32, f32)| b.1.total_cmp(&a.1).then_with(|| tie_key(a.0).cmp(&tie_key(b.0)));
            if hits.len() > k {
                hits.select_nth_unstable_by(k - 1, order);
                hits.truncate(k);
            }
            hits.sort_unstable_by(order);
            hits
        })
    }
}

/// The k-th largest score among the seen documents (`seen.len() >= k`).
fn kth_largest(seen: &[u32], acc: &[f32], values: &mut Vec<f32>, k: usize) -> f32 {
    values.clear();
    values.extend(seen.iter().map(|&d| acc[d as usize]));
    *values.select_nth_unstable_by(k - 1, |a, b| b.total_cmp(a)).1
}

/// Drops (and zeroes) seen documents whose best possible score is below `theta`.
fn drop_unreachable(seen: &mut Vec<u32>, acc: &mut [f32], theta: f32, reach: impl Fn(f32) -> f32) {
    seen.retain(|&d| {
        let keep = reach(acc[d as usize]) >= theta;
        if !keep {
            acc[d as usize] = 0.0;
        }
        keep
    });
}

/// Adds a term's scores to the seen documents (sorted; the only ones with a non-zero
/// score): galloping through the postings when they are few, else one pass over them.
fn add_to_seen(postings: &[Posting], seen: &[u32], acc: &mut [f32]) {
    if seen.len() * GALLOP_RATIO >= postings.len() {
        for p in postings {
            let a = &mut acc[p.doc as usize];
            *a += if *a != 0.0 { p.score } else { 0.0 }; // a select, not a branch
        }
        return;
    }
    let mut lo = 0;
    for &d in seen {
        let mut step = 1;
        let mut hi = lo;
        while hi < postings.len() && postings[hi].doc < d {
            lo = hi + 1;
            hi += step;
            step *= 2;
        }
        let hi = hi.min(postings.len());
        lo += postings[lo..hi].partition_point(|p| p.doc < d);
        if lo == postings.len() {
            return;
        }
        if postings[lo].doc == d {
            acc[d as usize] += postings[lo].score;
            lo += 1;
        }
    }
}
