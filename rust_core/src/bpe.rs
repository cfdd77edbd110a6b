//! Exact byte-level BPE for one pre-token, the tokenizer's cache-miss path, by
//! backtracking (the algorithm of GitHub's `bpe` crate, "So many tokens, so little
//! time", 2024): take the longest token the text starts with, keep it if BPE would
//! also put a boundary there (`valid_pair`), else try its next shorter prefix token,
//! and when none is left, step back. Near-linear in the pre-token's length, where a
//! rank-scanning merge loop is quadratic and HF's heap (the reference) O(n log n).
//! It encodes the pieces of a missed pre-token (`boundaries.rs`) that the memo lacks.
//!
//! It reproduces BPE only for vocabularies where every token is one byte or made by
//! exactly one merge from tokens of lower rank, and encodes to itself; `from_model`
//! checks this and declines otherwise (the reference then encodes).
use daachorse::{DoubleArrayAhoCorasick, DoubleArrayAhoCorasickBuilder, MatchKind};
use std::borrow::Cow;

use rustc_hash::FxHashMap;

use crate::boundaries::Boundaries;
use crate::tokenizer_file::BpeModel;

/// No shorter prefix token.
const NONE: u32 = u32::MAX;

/// Tokens carry two numbers: their vocabulary id, and their rank, which orders the
/// tokens BPE can produce as the merges do: a byte's rank is its value, the token of the
/// k-th merge (in rank order) has 256 + k, so a merged token outranks both its parts.
pub struct BytePairEncoder {
    /// Leftmost-longest matcher over the vocabulary; values are ids.
    longest: DoubleArrayAhoCorasick<u32>,
    /// Per id: its rank (`NONE` if BPE never produces it), its length in bytes, and the
    /// longest shorter token that is a prefix of it (`NONE` for a byte).
    rank: Vec<u32>,
    len: Vec<u32>,
    next_prefix: Vec<u32>,
    /// Per rank: the two ranks its merge joins (a byte: itself twice), and its id.
    split: Vec<(u32, u32)>,
    id: Vec<u32>,
    /// `(left << 32) | right` (ranks) → rank of the merged token.
    pairs: FxHashMap<u64, u32>,
    /// `ignore_merges`: a pre-token that is itself in the vocabulary is that one token.
    whole: Option<FxHashMap<Box<[u8]>, u32>>,
    /// Where a pre-token can be cut into pieces encoded apart.
    pub boundaries: Boundaries,
}

/// Reusable buffers of one thread.
#[derive(Default)]
pub struct Scratch {
    ranks: Vec<u32>,
    /// Bit p: a token may still end at byte p (cleared when every way on from p failed).
    open: Vec<u64>,
}

impl BytePairEncoder {
    /// From a byte-level BPE model (no subword prefix or suffix) and the byte-level
    /// alphabet. `Err` says what is malformed; `Ok(None)` means a well-formed vocabulary
    /// this does not reproduce (see the module comment).
    pub fn from_model(model: &BpeModel<'_>, byte_chars: &[char; 256]) -> Result<Option<Self>, String> {
        // The byte-level alphabet lies below U+0200: a table, not a map.
        let mut char_byte = [u16::MAX; 512];
        for (b, &c) in byte_chars.iter().enumerate() {
            *char_byte.get_mut(c as usize).ok_or("the byte-level alphabet reaches past U+01FF")? = b as u16;
        }
        let to_bytes = |token: &str, out: &mut Vec<u8>| -> Result<(), String> {
            for c in token.chars() {
                out.push(char_byte.get(c as usize).and_then(|&b| u8::try_from(b).ok()).ok_or_else(|| format!("token {token:?} is not byte-level"))?);
            }
            Ok(())
        };
        // Every token's bytes in one buffer, then borrowed: no allocation per token.
        let mut bytes = Vec::with_capacity(model.vocab.iter().map(|(t, _)| t.len()).sum());
        let mut ends = Vec::with_capacity(model.vocab.len());
        for (token, id) in &model.vocab {
            if *id == NONE {
                return Err(format!("token {token:?} has no 32-bit id"));
            }
            to_bytes(token, &mut bytes)?;
            ends.push(bytes.len());
        }
        let tokens: Vec<(&[u8], u32)> = (0..ends.len()).map(|i| (&bytes[if i == 0 { 0 } else { ends[i - 1] }..ends[i]], model.vocab[i].1)).collect();
        if tokens.iter().any(|(t, _)| t.is_empty()) {
            return Ok(None); // an empty token
        }
        // The matcher (the longest part of the build; faster from sorted patterns) is
        // built while the merges are read and the boundaries found.
        let (longest, vocab, merges, boundaries) = std::thread::scope(|s| {
            let longest = s.spawn(|| {
                let mut patterns = tokens.clone();
                patterns.sort_unstable();
                DoubleArrayAhoCorasickBuilder::new().match_kind(MatchKind::LeftmostLongest).build_with_values(patterns)
            });
            let vocab: FxHashMap<&[u8], u32> = tokens.iter().copied().collect();
            let merges = merges_in_rank_order(&model.merges, &to_bytes, &vocab);
            let boundaries = Boundaries::from_tokens(tokens.iter().map(|&(t, _)| t));
            (longest.join().expect("building the token matcher panicked"), vocab, merges, boundaries)
        });
        // A token listed twice fails the matcher's build.
        let (Ok(longest), merges) = (longest, merges?) else { return Ok(None) };
        let ids = tokens.iter().map(|&(_, id)| id).max().map_or(0, |m| m as usize + 1);
        let mut rank = vec![NONE; ids];
        let (mut split, mut id) = (Vec::with_capacity(256 + merges.len()), Vec::with_capacity(256 + merges.len()));
        for b in 0..=255u8 {
            let v = *vocab.get(&[b][..]).ok_or_else(|| format!("byte {b} has no token"))?;
            rank[v as usize] = b as u32;
            split.push((b as u32, b as u32));
            id.push(v);
        }
        let mut pairs = FxHashMap::default();
        pairs.reserve(merges.len());
        for (left, right, new) in merges {
            let (l, r) = (rank[left as usize], rank[right as usize]);
            if l == NONE || r == NONE || rank[new as usize] != NONE {
                return Ok(None); // a part made only by a later merge (or never), or a token made twice
            }
            let k = split.len() as u32;
            rank[new as usize] = k;
            pairs.insert((l as u64) << 32 | r as u64, k);
            split.push((l, r));
            id.push(new);
        }
        let mut bpe = BytePairEncoder { longest, rank, len: vec![0; ids], next_prefix: vec![NONE; ids], split, id, pairs, whole: None, boundaries };
        for &(token, v) in &tokens {
            bpe.len[v as usize] = token.len() as u32;
            bpe.next_prefix[v as usize] = bpe.longest_prefix(&token[..token.len() - 1]).unwrap_or(NONE);
        }
        // Backtracking is exact only if every token BPE can produce encodes to itself.
        let mut scratch = Scratch::default();
        for &(token, v) in &tokens {
            if bpe.rank[v as usize] != NONE {
                bpe.backtrack(token, &mut scratch);
                if scratch.ranks != [bpe.rank[v as usize]] {
                    return Ok(None);
                }
            }
        }
        bpe.whole = model.ignore_merges.then(|| tokens.iter().map(|&(t, id)| (t.into(), id)).collect());
        Ok(Some(bpe))
    }

    /// The longest token `text` starts with (every byte is one, so the leftmost match
    /// starts at 0).
    #[inline]
    fn longest_prefix(&self, text: &[u8]) -> Option<u32> {
        self.longest.leftmost_find_iter(text).next().map(|m| m.value())
    }

    /// Whether BPE, run on the bytes of `left` and `right` side by side, ends with
    /// exactly these two tokens: undo their merges from the latest one down, and fail
    /// where some pair across the boundary would have merged before the merge undone.
    #[inline]
    fn valid_pair(&self, mut left: u32, mut right: u32) -> bool {
        let mut limit = u32::MAX;
        loop {
            if let Some(&joined) = self.pairs.get(&((left as u64) << 32 | right as u64)) {
                if joined < limit {
                    return false;
                }
            }
            if left > right {
                limit = left;
                left = self.split[left as usize].1;
                if left == limit {
                    limit = right + 1;
                    right = self.split[right as usize].0;
                    if right + 1 == limit {
                        return true;
                    }
                }
            } else {
                limit = right + 1;
                right = self.split[right as usize].0;
                if right + 1 == limit {
                    limit = left;
                    left = self.split[left as usize].1;
                    if left == limit {
                        return true;
                    }
                }
            }
        }
    }

    /// The ranks of `text`'s tokens into `scratch.ranks`.
    fn backtrack(&self, text: &[u8], scratch: &mut Scratch) {
        let Scratch { ranks, open } = scratch;
        ranks.clear();
        open.clear();
        open.resize(text.len() / 64 + 1, u64::MAX);
        let mut pos = 0;
        let mut next = self.longest_prefix(text);
        while let Some(mut token) = next {
            let last = ranks.last().copied();
            loop {
                let (rank, end) = (self.rank[token as usize], pos + self.len[token as usize] as usize);
                if rank != NONE && open[end / 64] >> (end % 64) & 1 == 1 && last.is_none_or(|l| self.valid_pair(l, rank)) {
                    ranks.push(rank);
                    pos = end;
                    next = self.longest_prefix(&text[end..]);
                    break;
                }
                token = self.next_prefix[token as usize];
                if token == NONE {
                    // No token from `pos` works after `last`: no way on from here.
                    open[pos / 64] &= !(1 << (pos % 64));
                    ranks.pop();
                    next = last.map(|l| self.id[l as usize]);
                    pos -= next.map_or(0, |t| self.len[t as usize] as usize);
                    break;
                }
            }
        }
    }

    /// The one id of a whole pre-token under `ignore_merges` (which applies to the
    /// pre-token, not to its pieces), if it has one.
    pub fn whole(&self, pre_token: &[u8]) -> Option<u32> {
        self.whole.as_ref().and_then(|w| w.get(pre_token)).copied()
    }

    /// Appends the ids BPE's merges give `text` (raw bytes) to `out`.
    pub fn encode(&self, text: &[u8], scratch: &mut Scratch, out: &mut Vec<u32>) {
        self.backtrack(text, scratch);
        out.extend(scratch.ranks.iter().map(|&rank| self.id[rank as usize]));
    }
}

/// The merges as (left, right, merged) ids in rank order. A pair listed twice keeps its
/// last rank, as HF's merge map (collected from the list) does.
fn merges_in_rank_order(
    list: &[(Cow<'_, str>, Cow<'_, str>)],
    to_bytes: &dyn Fn(&str, &mut Vec<u8>) -> Result<(), String>,
    vocab: &FxHashMap<&[u8], u32>,
) -> Result<Vec<(u32, u32, u32)>, String> {
    let mut merges = Vec::with_capacity(list.len());
    let mut at: FxHashMap<(u32, u32), usize> = FxHashMap::default();
    at.reserve(list.len());
    let mut joined = Vec::new();
    for (rank, (a, b)) in list.iter().enumerate() {
        joined.clear();
        to_bytes(a, &mut joined)?;
        let cut = joined.len();
        to_bytes(b, &mut joined)?;
        let lookup = |t: &[u8]| vocab.get(t).copied().ok_or_else(|| format!("merge {rank}: {t:?} is not in the vocabulary"));
        let (left, right, new) = (lookup(&joined[..cut])?, lookup(&joined[cut..])?, lookup(&joined)?);
        if let Some(earlier) = at.insert((left, right), merges.len()) {
            merges[earlier] = (NONE, NONE, NONE);
        }
        merges.push((left, right, new));
    }
    merges.retain(|m| m.0 != NONE);
    Ok(merges)
}
