//! The parts of a tokenizer.json the fast path reads, parsed borrowing from the file's
//! text: a `serde_json::Value` of Qwen2's 151,643 tokens and 151,387 merges allocated a
//! string per entry, and building and dropping it was a third of a load.
use std::borrow::Cow;
use std::fmt;

use rustc_hash::FxHashMap;
use serde::de::{Deserializer, Error as _, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};

use crate::pretokenize::QWEN2_PATTERN;

/// A JSON string, borrowed from the file unless it has escapes.
pub struct Text<'a>(pub Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Text<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Text<'a>, E> {
                Ok(Text(Cow::Borrowed(s)))
            }
            fn visit_str<E>(self, s: &str) -> Result<Text<'a>, E> {
                Ok(Text(Cow::Owned(s.to_owned())))
            }
        }
        d.deserialize_str(V(std::marker::PhantomData))
    }
}

/// Everything but the model's vocabulary and merges, which stay unparsed until the
/// fast path is known to apply.
#[derive(Deserialize)]
pub struct TokenizerFile<'a> {
    #[serde(default)]
    normalizer: Value,
    #[serde(default)]
    pre_tokenizer: Value,
    #[serde(default)]
    post_processor: Value,
    #[serde(default, borrow)]
    added_tokens: Vec<AddedToken<'a>>,
    #[serde(borrow)]
    model: ModelHead<'a>,
}

#[derive(Deserialize)]
struct AddedToken<'a> {
    #[serde(borrow)]
    content: Option<Text<'a>>,
}

#[derive(Deserialize)]
struct ModelHead<'a> {
    #[serde(rename = "type", default)]
    kind: Value,
    #[serde(default)]
    dropout: Value,
    #[serde(default)]
    byte_fallback: Value,
    #[serde(default)]
    continuing_subword_prefix: Value,
    #[serde(default)]
    end_of_word_suffix: Value,
    #[serde(default)]
    ignore_merges: Value,
    #[serde(borrow, default)]
    vocab: Option<&'a RawValue>,
    #[serde(borrow, default)]
    merges: Option<&'a RawValue>,
}

/// A byte-level BPE model as the file lists it.
pub struct BpeModel<'a> {
    /// Token and id, in file order.
    pub vocab: Vec<(Cow<'a, str>, u32)>,
    /// Left and right part, in rank order.
    pub merges: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    pub ignore_merges: bool,
}

impl<'a> TokenizerFile<'a> {
    /// True when the file is NFC (or no normalizer) → Split(Qwen2 pattern, Isolated) →
    /// ByteLevel without its own regex → plain byte-level BPE, adding no special tokens:
    /// the pipeline the fast path reproduces.
    pub fn fast_path_applies(&self) -> bool {
        let normalizer_ok = self.normalizer.is_null() || self.normalizer == json!({"type": "NFC"});
        let pre = &self.pre_tokenizer;
        let pre_ok = pre["type"] == "Sequence"
            && pre["pretokenizers"].as_array().is_some_and(|p| {
                p.len() == 2
                    && p[0]["type"] == "Split"
                    && p[0]["pattern"]["Regex"] == QWEN2_PATTERN
                    && p[0]["behavior"] == "Isolated"
                    && p[0]["invert"] == false
                    && p[1]["type"] == "ByteLevel"
                    && p[1]["add_prefix_space"] == false
                    && p[1]["use_regex"] == false
            });
        let m = &self.model;
        let empty = |v: &Value| v.is_null() || v == "";
        let model_ok = m.kind == "BPE"
            && m.dropout.is_null()
            && m.byte_fallback != true
            && empty(&m.continuing_subword_prefix)
            && empty(&m.end_of_word_suffix)
            && m.vocab.is_some()
            && m.merges.is_some();
        let post_ok = self.post_processor.is_null() || self.post_processor["type"] == "ByteLevel";
        normalizer_ok && pre_ok && model_ok && post_ok
    }

    pub fn nfc(&self) -> bool {
        self.normalizer["type"] == "NFC"
    }

    /// The model's vocabulary and merges (`Err` says what is malformed).
    pub fn bpe(&self) -> Result<BpeModel<'a>, String> {
        let raw = |v: Option<&'a RawValue>, what: &str| v.map(RawValue::get).ok_or(format!("model has no {what}"));
        let mut de = serde_json::Deserializer::from_str(raw(self.model.vocab, "vocab")?);
        let vocab = de.deserialize_map(VocabVisitor).map_err(|e| format!("vocab: {e}"))?;
        let merges: Vec<Merge<'a>> = serde_json::from_str(raw(self.model.merges, "merges")?).map_err(|e| format!("merges: {e}"))?;
        Ok(BpeModel { vocab, merges: merges.into_iter().map(|m| (m.0, m.1)).collect(), ignore_merges: self.model.ignore_merges == true })
    }

    /// The added tokens' texts and ids, and the vocabulary size, as `tokenizers` (0.23)
    /// reads them: an added token takes the model's id for its text if there is one, else
    /// the next id from the model's vocabulary size on, in file order (the ids written
    /// in the file are not used); empty and repeated texts are skipped. The size is
    /// `Tokenizer::get_vocab_size(true)`.
    pub fn added(&self, model: &BpeModel<'a>) -> (FxHashMap<&str, u32>, usize) {
        let texts: Vec<&str> = self.added_tokens.iter().filter_map(|t| t.content.as_ref()).map(|t| t.0.as_ref()).filter(|t| !t.is_empty()).collect();
        let mut in_model: FxHashMap<&str, Option<u32>> = texts.iter().map(|&t| (t, None)).collect();
        for (token, id) in &model.vocab {
            if let Some(slot) = in_model.get_mut(token.as_ref()) {
                *slot = Some(*id);
            }
        }
        let (mut added, mut next) = (FxHashMap::default(), model.vocab.len() as u32);
        for t in texts {
            if added.contains_key(t) {
                continue;
            }
            let id = in_model[t].unwrap_or_else(|| {
                next += 1;
                next - 1
            });
            added.insert(t, id);
        }
        let size = model.vocab.len() + in_model.values().filter(|id| id.is_none()).count();
        (added, size)
    }
}

struct VocabVisitor;

impl<'de> Visitor<'de> for VocabVisitor {
    type Value = Vec<(Cow<'de, str>, u32)>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a map from token to 32-bit id")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::with_capacity(map.size_hint().unwrap_or(1 << 16));
        while let Some((Text(token), id)) = map.next_entry::<Text<'de>, u32>()? {
            out.push((token, id));
        }
        Ok(out)
    }
}

/// One merge: `["a", "b"]` (tokenizers ≥ 0.20) or `"a b"`.
struct Merge<'a>(Cow<'a, str>, Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Merge<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Merge<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a merge: two strings, or one with a space")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Merge<'a>, A::Error> {
                let (Some(Text(a)), Some(Text(b)), None) = (seq.next_element()?, seq.next_element()?, seq.next_element::<Text>()?) else {
                    return Err(A::Error::custom("a merge is not two strings"));
                };
                Ok(Merge(a, b))
            }
            fn visit_borrowed_str<E: serde::de::Error>(self, s: &'de str) -> Result<Merge<'a>, E> {
                let (a, b) = s.split_once(' ').ok_or_else(|| E::custom(format!("merge {s:?} has no space")))?;
                Ok(Merge(Cow::Borrowed(a), Cow::Borrowed(b)))
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Merge<'a>, E> {
                let (a, b) = s.split_once(' ').ok_or_else(|| E::custom(format!("merge {s:?} has no space")))?;
                Ok(Merge(Cow::Owned(a.to_owned()), Cow::Owned(b.to_owned())))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}
