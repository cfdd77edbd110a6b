//! BM25 retrieval over chunk files with tantivy and the per-language analyzers.
//!
//! One index per corpus: `text` is indexed (not stored: the chunk Parquet holds it) with
//! the language's analyzer registered as a tantivy tokenizer; `chunk_id` and
//! `document_id` are fast fields. A query is the set of its analyzed terms, OR-ed, so
//! every query term contributes its BM25 weight (tantivy's k1 = 1.2, b = 0.75). Queries
//! are answered from impacts precomputed at build time with tantivy's scores
//! (`impacts.rs`); tantivy's own collector is the tests' oracle.
use std::path::{Path, PathBuf};
use std::time::Instant;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use tantivy::collector::Count;
use tantivy::query::{BooleanQuery, Occur, Query, TermQuery};
use tantivy::schema::{IndexRecordOption, Schema, TextFieldIndexing, TextOptions, FAST, INDEXED, STORED};
use tantivy::tokenizer::{Token, TokenStream, Tokenizer};
use tantivy::{doc, Index, IndexReader, ReloadPolicy, Term};

use crate::analyzers::Analyzer;
use crate::error::{Error, Result};
use crate::impacts::{self, Impacts};
use crate::tables;

/// The analyzer as a tantivy tokenizer. Offsets are not kept (bigrams and folded
/// terms have none); snippets come from the chunk text.
#[derive(Clone)]
struct AnalyzerTokenizer(Analyzer);

struct Terms {
    tokens: Vec<Token>,
    next: usize,
}

impl TokenStream for Terms {
    fn advance(&mut self) -> bool {
        self.next += 1;
        self.next <= self.tokens.len()
    }
    fn token(&self) -> &Token {
        &self.tokens[self.next - 1]
    }
    fn token_mut(&mut self) -> &mut Token {
        &mut self.tokens[self.next - 1]
    }
}

impl Tokenizer for AnalyzerTokenizer {
    type TokenStream<'a> = Terms;
    fn token_stream<'a>(&'a mut self, text: &'a str) -> Terms {
        let tokens = self
            .0
            .analyze(text)
            .into_iter()
            .enumerate()
            .map(|(position, text)| Token { offset_from: 0, offset_to: 0, position, text, position_length: 1 })
            .collect();
        Terms { tokens, next: 0 }
    }
}

#[derive(Serialize, Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct IndexJob {
    pub chunks: Vec<PathBuf>,
    pub language: String,
    /// Index only chunks whose `language` column is one of these (empty: all).
    #[serde(default)]
    pub keep_languages: Vec<String>,
    pub index_dir: PathBuf,
    pub threads: usize,
    pub heap_mb: usize,
}

#[derive(Serialize, Debug)]
pub struct IndexStats {
    pub chunks: u64,
    pub chunks_skipped_language: u64,
    pub seconds: f64,
    pub chunks_per_second: f64,
}

#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct Hit {
    pub chunk_id: u64,
    pub document_id: u64,
    pub score: f32,
}

fn tantivy_err(path: &Path) -> impl Fn(tantivy::TantivyError) -> Error + '_ {
    move |e| Error::input(path, None, format!("index: {e}"))
}

fn register(index: &Index, analyzer: Analyzer) {
    index.tokenizers().register(analyzer.name(), AnalyzerTokenizer(analyzer));
}

fn schema(analyzer: Analyzer) -> Schema {
    let mut b = Schema::builder();
    b.add_u64_field("chunk_id", INDEXED | FAST | STORED);
    b.add_u64_field("document_id", FAST);
    let indexing = TextFieldIndexing::default().set_tokenizer(analyzer.name()).set_index_option(IndexRecordOption::WithFreqs);
    b.add_text_field("text", TextOptions::default().set_indexing_options(indexing));
    b.build()
}

/// Builds the index of every chunk file in `job.chunks` into `job.index_dir` (which must
/// not hold an index yet; the caller builds into a temporary directory and renames it).
pub fn build_index(job: &IndexJob) -> Result<IndexStats> {
    let t0 = Instant::now();
    let analyzer = Analyzer::for_language(&job.language)?;
    std::fs::create_dir_all(&job.index_dir).map_err(|e| Error::io(&job.index_dir, e))?;
    let schema = schema(analyzer);
    let index = Index::create_in_dir(&job.index_dir, schema.clone()).map_err(tantivy_err(&job.index_dir))?;
    register(&index, analyzer);
    let (f_chunk, f_doc, f_text) = (schema.get_field("chunk_id").unwrap(), schema.get_field("document_id").unwrap(), schema.get_field("text").unwrap());
    let threads = if job.threads == 0 { rayon::current_num_threads() } else { job.threads };
    let mut writer = index
        .writer_with_num_threads::<tantivy::TantivyDocument>(threads, job.heap_mb.max(15 * threads) << 20)
        .map_err(tantivy_err(&job.index_dir))?;
    let mut n = 0u64;
    let skipped = tables::for_each_chunk(&job.chunks, &job.keep_languages, |path, chunk| {
        writer
            .add_document(doc!(f_chunk => chunk.chunk_id, f_doc => chunk.document_id, f_text => chunk.text))
            .map_err(tantivy_err(path))?;
        n += 1;
        Ok(())
    })?;
    writer.commit().map_err(tantivy_err(&job.index_dir))?;
    // The index is read-only from here on: one segment means one posting list per term.
    let segments = index.searchable_segment_ids().map_err(tantivy_err(&job.index_dir))?;
    if segments.len() > 1 {
        writer.merge(&segments).wait().map_err(tantivy_err(&job.index_dir))?;
    }
    writer.wait_merging_threads().map_err(tantivy_err(&job.index_dir))?;
    let reader = index.reader_builder().reload_policy(ReloadPolicy::Manual).try_into().map_err(tantivy_err(&job.index_dir))?;
    impacts::write(&job.index_dir, only_segment(&reader, &job.index_dir)?.as_ref(), f_text)?;
    let seconds = t0.elapsed().as_secs_f64();
    Ok(IndexStats { chunks: n, chunks_skipped_language: skipped, seconds, chunks_per_second: n as f64 / seconds.max(1e-9) })
}

/// The index's segment (build_index merges to one; `None` when it holds no chunk).
fn only_segment(reader: &IndexReader, dir: &Path) -> Result<Option<tantivy::SegmentReader>> {
    let searcher = reader.searcher();
    match searcher.segment_readers() {
        [] => Ok(None),
        [one] => Ok(Some(one.clone())),
        many => Err(Error::input(dir, None, format!("index: {} segments where xcult writes one: rebuild it (`xcult index --force`)", many.len()))),
    }
}

pub struct Searcher {
    reader: IndexReader,
    analyzer: Analyzer,
    text: tantivy::schema::Field,
    /// The segment's term dictionary (query terms to ordinals) and its impacts.
    segment: Option<(std::sync::Arc<tantivy::InvertedIndexReader>, Impacts)>,
    /// chunk_id and document_id per segment document, read once.
    chunk_ids: Vec<u64>,
    document_ids: Vec<u64>,
}

impl Searcher {
    pub fn open(dir: &Path, language: &str) -> Result<Self> {
        let analyzer = Analyzer::for_language(language)?;
        if !dir.join("meta.json").is_file() {
            return Err(Error::io(dir, std::io::Error::new(std::io::ErrorKind::NotFound, "no tantivy index here (run `xcult index`)")));
        }
        let index = Index::open_in_dir(dir).map_err(tantivy_err(dir))?;
        register(&index, analyzer);
        let text = index.schema().get_field("text").map_err(|e| Error::input(dir, None, format!("index: {e}")))?;
        let reader: IndexReader = index.reader_builder().reload_policy(ReloadPolicy::Manual).try_into().map_err(tantivy_err(dir))?;
        let (mut chunk_ids, mut document_ids, mut segment) = (Vec::new(), Vec::new(), None);
        if let Some(seg) = only_segment(&reader, dir)? {
            let ff = seg.fast_fields();
            let column = |name: &str| ff.u64(name).map_err(|err| Error::input(dir, None, format!("index: fast field {name}: {err}")));
            let (chunk, document) = (column("chunk_id")?, column("document_id")?);
            chunk_ids = (0..seg.max_doc()).map(|d| chunk.first(d).unwrap_or(u64::MAX)).collect();
            document_ids = (0..seg.max_doc()).map(|d| document.first(d).unwrap_or(u64::MAX)).collect();
            let impacts = Impacts::open(dir, Some(&seg))?;
            segment = Some((seg.inverted_index(text).map_err(tantivy_err(dir))?, impacts));
        } else {
            Impacts::open(dir, None)?;
        }
        Ok(Searcher { reader, analyzer, text, segment, chunk_ids, document_ids })
    }

    /// The analyzed terms of `text`, sorted, each once.
    fn distinct_terms(&self, text: &str) -> Vec<String> {
        let mut terms = self.analyzer.analyze(text);
        terms.sort_unstable();
        terms.dedup();
        terms
    }

    /// The top `k` chunks for one query, best first (ties by chunk id): the union of its
    /// distinct analyzed terms, each adding its BM25 score.
    pub fn search(&self, text: &str, k: usize) -> Result<Vec<Hit>> {
        let Some((inverted, impacts)) = &self.segment else { return Ok(Vec::new()) };
        let terms = self.distinct_terms(text);
        let mut ords = Vec::with_capacity(terms.len());
        for t in &terms {
            if let Some(ord) = inverted.terms().term_ord(t.as_bytes()).map_err(|e| Error::io(impacts.path(), e))? {
                ords.push(ord);
            }
        }
        let top = impacts.top_k(&ords, k, |d| self.chunk_ids[d as usize]);
        Ok(top.into_iter().map(|(d, score)| Hit { chunk_id: self.chunk_ids[d as usize], document_id: self.document_ids[d as usize], score }).collect())
    }

    /// Many queries, in parallel over the queries.
    pub fn search_many(&self, queries: &[String], k: usize) -> Result<Vec<Vec<Hit>>> {
        if queries.len() == 1 {
            return Ok(vec![self.search(&queries[0], k)?]);  // no thread-pool hop for one query
        }
        queries.par_iter().map(|q| self.search(q, k)).collect()
    }

    /// Chunks in the index.
    pub fn num_chunks(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    /// Judge-free count over the whole index: chunks holding every term of `answer` and
    /// the `key_terms` rarest terms of `context` (the question) that are not answer terms
    /// and occur somewhere in the index. A question term absent from the corpus cannot
    /// co-occur, so it is passed over rather than zeroing every count.
    pub fn cooccurrence(&self, answer: &str, context: &str, key_terms: usize) -> Result<Cooccurrence> {
        let searcher = self.reader.searcher();
        let term = |t: &str| Term::from_field_text(self.text, t);
        let answer_terms = self.distinct_terms(answer);
        let mut context_terms = self.distinct_terms(context);
        context_terms.retain(|t| answer_terms.binary_search(t).is_err());
        let mut ranked = Vec::with_capacity(context_terms.len());
        for t in context_terms {
            let df = searcher.doc_freq(&term(&t)).map_err(|e| Error::config("index", e.to_string()))?;
            if df > 0 {
                ranked.push((df, t));
            }
        }
        ranked.sort_unstable();
        let keys: Vec<String> = ranked.into_iter().take(key_terms).map(|(_, t)| t).collect();
        if answer_terms.is_empty() {
            return Ok(Cooccurrence { chunks: 0, answer_terms, key_terms: keys });
        }
        let clauses = answer_terms
            .iter()
            .chain(&keys)
            .map(|t| (Occur::Must, Box::new(TermQuery::new(term(t), IndexRecordOption::Basic)) as Box<dyn Query>))
            .collect();
        let chunks = searcher.search(&BooleanQuery::new(clauses), &Count).map_err(|e| Error::config("query", e.to_string()))? as u64;
        Ok(Cooccurrence { chunks, answer_terms, key_terms: keys })
    }

    /// Co-occurrence counts for many (answer, context) pairs, in parallel.
    pub fn cooccurrence_many(&self, pairs: &[(String, String)], key_terms: usize) -> Result<Vec<Cooccurrence>> {
        pairs.par_iter().map(|(a, c)| self.cooccurrence(a, c, key_terms)).collect()
    }
}

#[derive(Debug)]
pub struct Cooccurrence {
    pub chunks: u64,
    pub answer_terms: Vec<String>,
    pub key_terms: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tables::ChunkWriter;

    fn write_chunks(dir: &Path, lang: &str, texts: &[&str]) -> PathBuf {
        let path = dir.join(format!("{lang}.chunks.parquet"));
        let mut w = ChunkWriter::create(&path).unwrap();
        for (i, t) in texts.iter().enumerate() {
            w.push(i as u64, lang, t.to_string()).unwrap();
        }
        w.finish().unwrap();
        path
    }

    #[test]
    fn planted_chunk_ranks_first_in_every_language() {
        let cases = [
            ("en", vec!["the weather is mild today", "Lhasa is the capital of Tibet and lies high", "markets sell rice"], "capital of Tibet: Lhasa"),
            ("zh", vec!["今天天气很好。", "泰山位于山东，是五岳之首。", "市场上卖大米。"], "五岳之首是泰山"),
            ("ko", vec!["오늘 날씨가 좋다", "김치는 한국의 전통 음식이다", "시장에서 쌀을 판다"], "한국의 전통 음식 김치"),
            ("bo", vec!["དེ་རིང་གནམ་གཤིས་ཡག་པོ་འདུག།", "བོད་ཀྱི་རྒྱལ་ས་ནི་ལྷ་ས་ཡིན།", "ཁྲོམ་ལ་འབྲས་འཚོང་།"], "བོད་ཀྱི་རྒྱལ་ས་ལྷ་ས"),
            ("mn", vec!["ᠡᠨᠡᠳᠦᠷ ᠴᠠᠭ ᠠᠭᠠᠷ ᠰᠠᠢᠬᠠᠨ", "ᠮᠣᠩᠭᠣᠯ\u{180B}\u{202F}ᠤᠨ ᠨᠠᠶᠢᠷ ᠨᠠᠭᠠᠳᠣᠮ", "ᠵᠠᠬ\u{180E}ᠠ ᠳᠠᠭᠠᠷ"], "ᠮᠣᠩᠭᠣᠯ ᠨᠠᠭᠠᠳᠣᠮ"),
        ];
        for (lang, texts, query) in cases {
            let dir = tempfile::tempdir().unwrap();
            let chunks = write_chunks(dir.path(), lang, &texts);
            let index_dir = dir.path().join("index");
            let stats = build_index(&IndexJob { chunks: vec![chunks], language: lang.into(), keep_languages: vec![], index_dir: index_dir.clone(), threads: 1, heap_mb: 50 }).unwrap();
            assert_eq!(stats.chunks, 3);
            let hits = Searcher::open(&index_dir, lang).unwrap().search(query, 3).unwrap();
            assert_eq!(hits[0].chunk_id, 1, "{lang}: {hits:?}");
            assert!(hits[0].score > 0.0 && hits.windows(2).all(|w| w[0].score >= w[1].score));
        }
    }

    /// tantivy's own BM25 collector over the same index: the oracle for `search`.
    fn tantivy_top(s: &Searcher, text: &str, k: usize) -> Vec<(u64, f32)> {
        use tantivy::collector::TopDocs;
        let clauses = s
            .distinct_terms(text)
            .into_iter()
            .map(|t| (Occur::Should, Box::new(TermQuery::new(Term::from_field_text(s.text, &t), IndexRecordOption::WithFreqs)) as Box<dyn Query>))
            .collect();
        let top = s.reader.searcher().search(&BooleanQuery::new(clauses), &TopDocs::with_limit(k)).unwrap();
        top.into_iter().map(|(score, addr)| (s.chunk_ids[addr.doc_id as usize], score)).collect()
    }

    #[test]
    fn impact_search_equals_tantivy_scoring() {
        // Zipf-like words so queries mix terms in most chunks with rare ones, duplicated
        // chunks so the k-th score is often tied, and k from 1 to more than the matches.
        let mut state = 0x2545F4914F6CDD1Du64;
        let mut next = move |n: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % n
        };
        let words: Vec<String> = (0..3000).map(|i| format!("w{i}")).collect();
        let zipf = |next: &mut dyn FnMut(u64) -> u64| {
            let r = next(1 << 20) as f64 / (1u64 << 20) as f64;
            &words[((3000f64).powf(r) as usize - 1).min(2999)]
        };
        let mut texts: Vec<String> = (0..1500).map(|_| (0..5 + next(200)).map(|_| zipf(&mut next).clone()).collect::<Vec<_>>().join(" ")).collect();
        for i in 0..100 {
            texts[1400 + i] = texts[i * 7].clone();
        }
        let dir = tempfile::tempdir().unwrap();
        let refs: Vec<&str> = texts.iter().map(|t| t.as_str()).collect();
        let chunks = write_chunks(dir.path(), "en", &refs);
        let index_dir = dir.path().join("i");
        build_index(&IndexJob { chunks: vec![chunks], language: "en".into(), keep_languages: vec![], index_dir: index_dir.clone(), threads: 2, heap_mb: 50 }).unwrap();
        let s = Searcher::open(&index_dir, "en").unwrap();
        let (mut compared, mut pruned_ties) = (0, 0);
        for q in 0..400 {
            let query: Vec<String> = (0..1 + next(15)).map(|_| zipf(&mut next).clone()).collect();
            let query = query.join(" ") + if q % 10 == 0 { " absentword" } else { "" };
            for k in [1usize, 5, 50, 2000] {
                let ours = s.search(&query, k).unwrap();
                let theirs = tantivy_top(&s, &query, k);
                assert_eq!(ours.len(), theirs.len(), "{query} k={k}");
                let close = |a: f32, b: f32| (a - b).abs() <= 1e-5 * b.abs().max(1.0);
                for (h, (_, score)) in ours.iter().zip(&theirs) {
                    assert!(close(h.score, *score), "{query} k={k}: {} vs {score}", h.score);
                }
                // Same chunks, except where tantivy breaks a tie at the k-th score otherwise.
                let last = theirs.last().map_or(0.0, |t| t.1);
                let mine: std::collections::HashSet<u64> = ours.iter().filter(|h| !close(h.score, last)).map(|h| h.chunk_id).collect();
                let oracle: std::collections::HashSet<u64> = theirs.iter().filter(|t| !close(t.1, last)).map(|t| t.0).collect();
                assert_eq!(mine, oracle, "{query} k={k}");
                // Within a tie, the lower chunk id first.
                assert!(ours.windows(2).all(|w| w[0].score > w[1].score || w[0].chunk_id < w[1].chunk_id), "{query} k={k}");
                pruned_ties += ours.iter().filter(|h| close(h.score, last)).count().saturating_sub(1);
                compared += 1;
            }
        }
        assert_eq!(compared, 1600);
        assert!(pruned_ties > 100, "the queries must exercise ties at the k-th score: {pruned_ties}");
    }

    #[test]
    fn an_index_without_its_impacts_is_named_stale() {
        let dir = tempfile::tempdir().unwrap();
        let chunks = write_chunks(dir.path(), "en", &["alpha beta", "beta gamma"]);
        let index_dir = dir.path().join("i");
        build_index(&IndexJob { chunks: vec![chunks], language: "en".into(), keep_languages: vec![], index_dir: index_dir.clone(), threads: 1, heap_mb: 50 }).unwrap();
        let file = index_dir.join(impacts::FILE);
        let bytes = std::fs::read(&file).unwrap();
        std::fs::write(&file, &bytes[..bytes.len() - 4]).unwrap();
        let err = Searcher::open(&index_dir, "en").err().unwrap().to_string();
        assert!(err.contains("impacts.bin") && err.contains("truncated") && err.contains("xcult index --force"), "{err}");
        std::fs::remove_file(&file).unwrap();
        let err = Searcher::open(&index_dir, "en").err().unwrap().to_string();
        assert!(err.contains("older xcult"), "{err}");
    }

    #[test]
    fn missing_index_errors_language_filter_skips_empty_query_finds_nothing() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(Searcher::open(dir.path(), "en"), Err(Error::Io { .. })));
        let chunks = write_chunks(dir.path(), "en", &["alpha beta"]);
        let index_dir = dir.path().join("i");
        let stats = build_index(&IndexJob { chunks: vec![chunks], language: "en".into(), keep_languages: vec!["zh".into()], index_dir: index_dir.clone(), threads: 1, heap_mb: 50 }).unwrap();
        assert_eq!((stats.chunks, stats.chunks_skipped_language), (0, 1));
        let s = Searcher::open(&index_dir, "en").unwrap();
        assert!(s.search("!!! ...", 5).unwrap().is_empty() && s.search("alpha", 5).unwrap().is_empty());
    }

    #[test]
    fn cooccurrence_counts_chunks_with_answer_and_rarest_question_terms() {
        let dir = tempfile::tempdir().unwrap();
        let texts = [
            "the harvest festival of the Vold people is called Marrow Night",
            "at Marrow Night the Vold people eat bread",
            "Marrow Night is a festival elsewhere too",
            "the Vold people have a festival",
            "people eat bread at every festival",
        ];
        let chunks = write_chunks(dir.path(), "en", &texts);
        let index_dir = dir.path().join("i");
        build_index(&IndexJob { chunks: vec![chunks], language: "en".into(), keep_languages: vec![], index_dir: index_dir.clone(), threads: 1, heap_mb: 50 }).unwrap();
        let s = Searcher::open(&index_dir, "en").unwrap();
        assert_eq!(s.num_chunks(), 5);
        // "vold" (df 3) is the rarest question term; "festival" and "people" (df 4) follow.
        let q = "Vold people celebrate festival";
        let one = s.cooccurrence("Marrow Night", q, 1).unwrap();
        assert_eq!(one.answer_terms, vec!["marrow", "night"]);
        assert_eq!(one.key_terms, vec!["vold"]);
        assert_eq!(one.chunks, 2);
        let two = s.cooccurrence("Marrow Night", q, 2).unwrap();
        assert_eq!((two.key_terms.clone(), two.chunks), (vec!["vold".to_string(), "festival".to_string()], 1));
        // "celebrate" is in no chunk, so it is passed over rather than zeroing the count.
        let all = s.cooccurrence("Marrow Night", q, 9).unwrap();
        assert_eq!((all.key_terms.len(), all.chunks), (3, 1));
        assert_eq!(s.cooccurrence("!!!", "Vold", 3).unwrap().chunks, 0);
        let many = s.cooccurrence_many(&[("bread".into(), "people eat".into()), ("Marrow".into(), "".into())], 3).unwrap();
        assert_eq!((many[0].chunks, many[1].chunks), (2, 3));
    }
}
