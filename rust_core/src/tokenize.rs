//! Tokenization with the HF `tokenizers` crate as the reference, plus an exact fast
//! path for Qwen2-style byte-level BPE tokenizers: a hand-written pre-tokenizer, a
//! per-thread memo from short pre-token to ids (`piece_cache.rs`), and on a miss the
//! pre-token cut where no token spans (`boundaries.rs`), each piece from the memo or the
//! backtracking encoder of `bpe.rs`.
//! Text that is not NFC is normalised first, as the reference does. Documents the fast
//! path does not cover (added-token text, non-NFC text for a tokenizer without an NFC
//! normaliser, rare apostrophe cases) go through the reference, so ids are always the
//! reference's.
use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use aho_corasick::AhoCorasick;
use std::str::FromStr;

use tokenizers::Tokenizer;
use unicode_normalization::{is_nfc_quick, IsNormalized, UnicodeNormalization};

use crate::bpe::{BytePairEncoder, Scratch};
use crate::error::{Error, Result};
use crate::piece_cache::PieceCache;
use crate::pretokenize::split_qwen2;
use crate::tokenizer_file::TokenizerFile;

/// Which implementation encodes documents.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenizerImpl {
    /// The fast path where the tokenizer allows it, else the reference.
    Auto,
    /// `tokenizers::Tokenizer::encode` for every document.
    Reference,
}

pub struct TextTokenizer {
    /// The reference. Where the fast path covers the tokenizer it is built on first use
    /// (from `json`): corpora rarely need it, and building it was most of a load.
    hf: OnceLock<std::result::Result<Tokenizer, String>>,
    json: String,
    fast: Option<FastPath>,
    pub eod: u32,
    pub vocab_size: usize,
    pub path: PathBuf,
    id: u64,
}

struct FastPath {
    /// The tokenizer normalises to NFC (else it has no normaliser).
    nfc: bool,
    added: AhoCorasick,
    bpe: BytePairEncoder,
}

/// How many pieces ahead the memo slot is prefetched.
const PREFETCH_AHEAD: usize = 4;

thread_local! {
    static CACHE: RefCell<PieceCache> = RefCell::new(PieceCache::default());
    static SCRATCH: RefCell<(Vec<(usize, usize)>, Scratch)> = RefCell::new(Default::default());
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Whether `text` is NFC by the quick check (`Maybe` counts as no). Nearly every
/// character of real text is a starter with NFC_QC = Yes, where the check cannot fail:
/// one bit per BMP code point (8 KB) says so; a character outside them sends the text
/// to the full check, whose two hash-table lookups per character were a tenth of
/// encoding Chinese.
fn is_nfc(text: &str) -> bool {
    static PLAIN: OnceLock<Vec<u64>> = OnceLock::new();
    let plain = PLAIN.get_or_init(|| {
        let mut bits = vec![0u64; 0x10000 / 64];
        for c in (0..0x10000).filter_map(char::from_u32) {
            let yes = unicode_normalization::char::canonical_combining_class(c) == 0 && is_nfc_quick(std::iter::once(c)) == IsNormalized::Yes;
            bits[c as usize / 64] |= (yes as u64) << (c as usize % 64);
        }
        bits
    });
    let is_plain = |c: char| plain.get(c as usize / 64).is_some_and(|w| w >> (c as usize % 64) & 1 == 1);
    text.chars().all(is_plain) || is_nfc_quick(text.chars()) == IsNormalized::Yes
}

/// GPT-2's reversible byte → printable character map used by ByteLevel.
fn byte_chars() -> [char; 256] {
    let mut map = ['\0'; 256];
    let mut extra = 0u32;
    for b in 0..256u32 {
        let printable = (33..=126).contains(&b) || (161..=172).contains(&b) || (174..=255).contains(&b);
        map[b as usize] = if printable {
            char::from_u32(b).unwrap()
        } else {
            extra += 1;
            char::from_u32(255 + extra).unwrap()
        };
    }
    map
}

impl TextTokenizer {
    /// Loads a tokenizer.json. `eod` names the end-of-document token.
    pub fn load(path: &Path, eod: &str, implementation: TokenizerImpl) -> Result<Self> {
        let err = |message: String| Error::Tokenizer { path: path.to_path_buf(), message };
        let text = std::fs::read_to_string(path).map_err(|e| err(format!("cannot read: {e}")))?;
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let fast = if implementation == TokenizerImpl::Auto { Self::load_fast(&text, eod).map_err(err)? } else { None };
        let Some((fast, eod, vocab_size)) = fast else {
            let hf = Tokenizer::from_str(&text).map_err(|e| err(format!("cannot load: {e}")))?;
            let eod_id = hf.token_to_id(eod).ok_or_else(|| err(format!("has no end-of-document token {eod:?}")))?;
            let vocab_size = hf.get_vocab_size(true);
            return Ok(TextTokenizer { hf: OnceLock::from(Ok(hf)), json: String::new(), fast: None, eod: eod_id, vocab_size, path: path.to_path_buf(), id });
        };
        Ok(TextTokenizer { hf: OnceLock::new(), json: text, fast: Some(fast), eod, vocab_size, path: path.to_path_buf(), id })
    }

    /// The fast path with the end-of-document id and the vocabulary size, or `None` where
    /// the file is valid JSON in a shape the fast path does not reproduce.
    fn load_fast(text: &str, eod: &str) -> std::result::Result<Option<(FastPath, u32, usize)>, String> {
        let file: TokenizerFile = match serde_json::from_str(text) {
            Ok(file) => file,
            Err(e) if serde_json::from_str::<serde::de::IgnoredAny>(text).is_err() => return Err(format!("not JSON: {e}")),
            Err(_) => return Ok(None),
        };
        if !file.fast_path_applies() {
            return Ok(None);
        }
        let model = file.bpe().map_err(|e| format!("model: {e}"))?;
        let Some(bpe) = BytePairEncoder::from_model(&model, &byte_chars()).map_err(|e| format!("model: {e}"))? else { return Ok(None) };
        let (added, vocab_size) = file.added(&model);
        let eod_id = added.get(eod).copied().or_else(|| model.vocab.iter().find(|(t, _)| t == eod).map(|&(_, id)| id));
        let eod_id = eod_id.ok_or_else(|| format!("has no end-of-document token {eod:?}"))?;
        let fast = FastPath { nfc: file.nfc(), added: AhoCorasick::new(added.keys()).expect("added tokens"), bpe };
        Ok(Some((fast, eod_id, vocab_size)))
    }

    fn hf(&self) -> Result<&Tokenizer> {
        let hf = self.hf.get_or_init(|| Tokenizer::from_str(&self.json).map_err(|e| format!("cannot load: {e}")));
        hf.as_ref().map_err(|message| Error::Tokenizer { path: self.path.clone(), message: message.clone() })
    }

    pub fn uses_fast_path(&self) -> bool {
        self.fast.is_some()
    }

    /// Reference encoding: exactly `Tokenizer::encode(text, false)`.
    pub fn encode_reference(&self, text: &str) -> Result<Vec<u32>> {
        self.hf()?
            .encode(text, false)
            .map(|e| e.get_ids().to_vec())
            .map_err(|e| Error::Tokenizer { path: self.path.clone(), message: e.to_string() })
    }

    /// Appends the ids of `text` to `out`.
    pub fn encode_into(&self, text: &str, out: &mut Vec<u32>) -> Result<()> {
        if let Some(fast) = &self.fast {
            if self.encode_fast(fast, text, out) {
                return Ok(());
            }
        }
        out.extend(self.encode_reference(text)?);
        Ok(())
    }

    /// `false` leaves `out` untouched and asks for the reference.
    fn encode_fast(&self, fast: &FastPath, text: &str, out: &mut Vec<u32>) -> bool {
        if fast.added.is_match(text) {
            return false;
        }
        // The reference normalises to NFC before splitting, so ids depend only on the
        // normalised text; a tokenizer without a normaliser takes such text as it is.
        let normalized: String;
        let text = if text.is_ascii() || is_nfc(text) {
            text
        } else if fast.nfc {
            normalized = text.nfc().collect();
            // An added token's text made by normalisation is not one to HF: leave it to HF.
            if fast.added.is_match(&normalized) {
                return false;
            }
            &normalized
        } else {
            return false;
        };
        SCRATCH.with_borrow_mut(|(pieces, scratch)| {
            pieces.clear();
            if !split_qwen2(text, pieces) {
                return false;
            }
            CACHE.with_borrow_mut(|cache| {
                cache.prepare(self.id);
                let bytes = text.as_bytes();
                for (k, &(a, b)) in pieces.iter().enumerate() {
                    // A memo slot is a cache miss more often than not: start the one a
                    // few pieces ahead while this one is looked up.
                    if let Some(&(c, d)) = pieces.get(k + PREFETCH_AHEAD) {
                        cache.prefetch(bytes, c, d);
                    }
                    if cache.extend(bytes, a, b, out) {
                        continue;
                    }
                    let from = out.len();
                    if let Some(id) = fast.bpe.whole(&bytes[a..b]) {
                        out.push(id);
                    } else {
                        // A missed pre-token in pieces no token spans: those repeat where
                        // the pre-token does not (unspaced runs), so the memo has them.
                        fast.bpe.boundaries.split(&text[a..b], |x, y, one| {
                            let (x, y) = (a + x, a + y);
                            if (x, y) == (a, b) {
                                fast.bpe.encode(&bytes[a..b], scratch, out);
                                return;
                            }
                            if let Some(id) = one.and_then(|c| cache.char_id(c)) {
                                out.push(id);
                                return;
                            }
                            let at = out.len();
                            if !cache.extend(bytes, x, y, out) {
                                fast.bpe.encode(&bytes[x..y], scratch, out);
                                cache.insert(bytes, x, y, &out[at..]);
                            }
                            if let (Some(c), &[id]) = (one, &out[at..]) {
                                cache.insert_char(c, id);
                            }
                        });
                    }
                    cache.insert(bytes, a, b, &out[from..]);
                }
            });
            true
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::pretokenize::QWEN2_PATTERN;

    /// A Qwen2-shaped tokenizer.json with a tiny byte-level vocabulary: every byte,
    /// a few merges, and the Qwen special tokens.
    pub fn tiny_qwen_like(dir: &Path) -> PathBuf {
        tiny_qwen_with(dir, &[("h", "e"), ("l", "l"), ("he", "ll"), ("Ġ", "w"), ("o", "r")])
    }

    fn tiny_qwen_with(dir: &Path, merges: &[(&str, &str)]) -> PathBuf {
        let bc = byte_chars();
        let mut vocab = serde_json::Map::new();
        for (i, c) in bc.iter().enumerate() {
            vocab.insert(c.to_string(), i.into());
        }
        for &(a, b) in merges {
            let n = vocab.len();
            vocab.entry(format!("{a}{b}")).or_insert(n.into());
        }
        let n = vocab.len();
        let json = serde_json::json!({
            "version": "1.0", "truncation": null, "padding": null,
            "added_tokens": [{"id": n, "content": "<|endoftext|>", "single_word": false, "lstrip": false,
                              "rstrip": false, "normalized": false, "special": true}],
            "normalizer": {"type": "NFC"},
            "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
                {"type": "Split", "pattern": {"Regex": QWEN2_PATTERN}, "behavior": "Isolated", "invert": false},
                {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false}]},
            "post_processor": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false},
            "decoder": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false},
            "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": "",
                      "end_of_word_suffix": "", "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
                      "vocab": vocab, "merges": merges.iter().map(|(a, b)| vec![*a, *b]).collect::<Vec<_>>()}
        });
        let path = dir.join("tokenizer.json");
        std::fs::write(&path, serde_json::to_string(&json).unwrap()).unwrap();
        path
    }

    /// `len` characters drawn from `pool` by a xorshift generator at `state`.
    pub fn random_text(state: &mut u64, pool: &[char], len: usize) -> String {
        (0..len)
            .map(|_| {
                *state ^= *state << 13;
                *state ^= *state >> 7;
                *state ^= *state << 17;
                pool[(*state % pool.len() as u64) as usize]
            })
            .collect()
    }

    #[test]
    fn fast_path_equals_reference() {
        let dir = tempfile::tempdir().unwrap();
        let tok = TextTokenizer::load(&tiny_qwen_like(dir.path()), "<|endoftext|>", TokenizerImpl::Auto).unwrap();
        assert!(tok.uses_fast_path());
        let texts = [
            "hello world, hello World's end\n\n  x",
            "北京是中国的首都。 서울 ལྷ་ས་ ᠮᠣᠩᠭᠣᠯ\u{202F}ᠤᠨ 1949年",
            "e\u{301} is not NFC; <|endoftext|> is special; it'ſ odd",
            "\t\r\n  trailing   ",
            "cafe\u{301} \u{212B}\u{2126}\u{037E} \u{0F43}\u{0F72} ཀ\u{0F71}\u{0F72}\u{0F80} e\u{301}\u{323}",
        ];
        for text in texts {
            let mut fast = Vec::new();
            tok.encode_into(text, &mut fast).unwrap();
            assert_eq!(fast, tok.encode_reference(text).unwrap(), "{text:?}");
        }
    }

    #[test]
    fn the_nfc_bit_table_agrees_with_the_quick_check() {
        let quick = |t: &str| is_nfc_quick(t.chars()) == IsNormalized::Yes;
        for c in (0..0x11000).filter_map(char::from_u32) {
            let text = c.to_string();
            assert_eq!(is_nfc(&text), quick(&text), "{c:?}");
        }
        // Starters each, but out of order or composable together: only the full check knows.
        for text in ["e\u{301}", "a\u{323}\u{301}", "a\u{301}\u{323}", "\u{1100}\u{1161}", "中文\u{0F73}", "Å"] {
            assert_eq!(is_nfc(text), quick(text), "{text:?}");
        }
    }

    #[test]
    fn backtracking_equals_the_hf_model_on_random_words() {
        // Runs of l and e exercise ties between equal pairs (leftmost first) and merges
        // that build on merges (he + ll). The second vocabulary makes the longest token
        // wrong and forces steps back: BPE splits "hello" he + l + lo (lo merges first),
        // and "world" w + or + ld, not wor + ld (or merges after ld).
        let second = [("l", "o"), ("h", "e"), ("l", "l"), ("l", "d"), ("he", "ll"), ("o", "r"), ("w", "or"), ("e", "l"), ("he", "l"), ("Ġ", "w"), ("hel", "lo")];
        for merges in [&[("h", "e"), ("l", "l"), ("he", "ll"), ("Ġ", "w"), ("o", "r")][..], &second] {
            let dir = tempfile::tempdir().unwrap();
            let tok = TextTokenizer::load(&tiny_qwen_with(dir.path(), merges), "<|endoftext|>", TokenizerImpl::Auto).unwrap();
            assert!(tok.uses_fast_path());
            let alphabet: Vec<char> = "helllloowrd  ".chars().collect();
            let mut state = 0x2545F4914F6CDD1Du64;
            for n in 0..3000 {
                // Every 100th a 3,000-letter word without spaces: one long pre-token.
                let (len, pool) = if n % 100 == 0 { (3000, &alphabet[..11]) } else { (1 + n % 40, &alphabet[..]) };
                let text = random_text(&mut state, pool, len);
                let mut fast = Vec::new();
                tok.encode_into(&text, &mut fast).unwrap();
                assert_eq!(fast, tok.encode_reference(&text).unwrap(), "{text:?}");
            }
        }
    }

    #[test]
    fn a_token_made_by_two_merges_leaves_the_fast_path_off() {
        // "hel" is made by he + l and by h + el: outside what backtracking reproduces.
        let dir = tempfile::tempdir().unwrap();
        let merges = [("h", "e"), ("e", "l"), ("he", "l"), ("h", "el")];
        let tok = TextTokenizer::load(&tiny_qwen_with(dir.path(), &merges), "<|endoftext|>", TokenizerImpl::Auto).unwrap();
        assert!(!tok.uses_fast_path());
        let mut ids = Vec::new();
        tok.encode_into("hel hello", &mut ids).unwrap();
        assert_eq!(ids, tok.encode_reference("hel hello").unwrap());
    }

    #[test]
    fn a_pair_listed_twice_keeps_its_last_rank_as_in_hf() {
        // If the first rank won: "ell" -> e + ll, "helo" -> hel + o; the last (HF): el + l,
        // he + lo. A pair of bytes and a pair of merged tokens, each listed twice.
        let dir = tempfile::tempdir().unwrap();
        let merges = [("l", "l"), ("h", "e"), ("e", "l"), ("l", "l"), ("he", "l"), ("l", "o"), ("he", "l")];
        let tok = TextTokenizer::load(&tiny_qwen_with(dir.path(), &merges), "<|endoftext|>", TokenizerImpl::Auto).unwrap();
        for text in ["ell", "helo", "hell", "yellow bell"] {
            let mut fast = Vec::new();
            tok.encode_into(text, &mut fast).unwrap();
            assert_eq!(fast, tok.encode_reference(text).unwrap(), "{text:?}");
        }
    }

    #[test]
    fn vocabulary_facts_read_from_the_file_equal_the_reference() {
        // Added tokens with ids the file gets wrong (a gap, one past the end), one whose
        // text is a model token, a repeat and an empty one: HF assigns its own ids.
        let dir = tempfile::tempdir().unwrap();
        let path = tiny_qwen_like(dir.path());
        let mut json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let extra = [("<|im_start|>", 900), ("<|im_end|>", 5), ("he", 7), ("<|im_start|>", 901), ("", 902), ("<|x|>", 903)];
        for (content, id) in extra {
            json["added_tokens"].as_array_mut().unwrap().push(serde_json::json!({"id": id, "content": content, "single_word": false,
                "lstrip": false, "rstrip": false, "normalized": false, "special": true}));
        }
        std::fs::write(&path, json.to_string()).unwrap();
        let fast = TextTokenizer::load(&path, "<|endoftext|>", TokenizerImpl::Auto).unwrap();
        assert!(fast.uses_fast_path() && fast.hf.get().is_none(), "the reference is built on first use only");
        for eod in ["<|endoftext|>", "<|im_end|>", "<|x|>", "he", "hell"] {
            let fast = TextTokenizer::load(&path, eod, TokenizerImpl::Auto).unwrap();
            let reference = TextTokenizer::load(&path, eod, TokenizerImpl::Reference).unwrap();
            assert_eq!((fast.eod, fast.vocab_size), (reference.eod, reference.vocab_size), "{eod}");
        }
        let text = "he said <|im_end|> hello";
        let mut ids = Vec::new();
        fast.encode_into(text, &mut ids).unwrap();
        assert_eq!(ids, fast.hf().unwrap().encode(text, false).unwrap().get_ids(), "added-token text goes to the reference");
    }

    #[test]
    fn merges_written_as_strings_and_escaped_tokens_load_the_fast_path() {
        // tokenizers < 0.20 writes a merge as "a b"; `"` and `\\` are escaped in JSON, so
        // those tokens are not borrowed from the file's text.
        let dir = tempfile::tempdir().unwrap();
        let merges = [("\"", "h"), ("h", "e"), ("\\", "\\"), ("\"h", "e")];
        let path = tiny_qwen_with(dir.path(), &merges);
        let mut json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        json["model"]["merges"] = merges.iter().map(|(a, b)| format!("{a} {b}")).collect();
        std::fs::write(&path, json.to_string()).unwrap();
        let tok = TextTokenizer::load(&path, "<|endoftext|>", TokenizerImpl::Auto).unwrap();
        assert!(tok.uses_fast_path());
        for text in ["\"he said\" \\\\ \"hhe", "he\\\\\\"] {
            let mut fast = Vec::new();
            tok.encode_into(text, &mut fast).unwrap();
            assert_eq!(fast, tok.encode_reference(text).unwrap(), "{text:?}");
        }
        assert_eq!(tok.encode_reference("\"he").unwrap().len(), 1, "the merges were read");
        std::fs::write(&path, "{\"model\": ").unwrap();
        let err = TextTokenizer::load(&path, "<|endoftext|>", TokenizerImpl::Auto).err().unwrap();
        assert!(err.to_string().contains("not JSON"), "{err}");
    }

    #[test]
    fn missing_file_and_missing_eod_are_tokenizer_errors() {
        let err = TextTokenizer::load(Path::new("/nonexistent/tokenizer.json"), "<|endoftext|>", TokenizerImpl::Auto);
        assert!(matches!(err, Err(Error::Tokenizer { .. })));
        let dir = tempfile::tempdir().unwrap();
        let err = TextTokenizer::load(&tiny_qwen_like(dir.path()), "</s>", TokenizerImpl::Auto).err().unwrap();
        assert!(err.to_string().contains("</s>"), "{err}");
    }
}

