//! Exact byte-level BPE for one pre-token, the tokenizer's cache-miss path. HF's
//! `Word::merge_all` pops the pair of lowest merge rank, the leftmost on ties, until no
//! adjacent pair has a merge; this does the same over flat arrays indexed by the
//! symbol's first byte: its id, the rank of the pair it starts (a merged-away symbol
//! keeps rank "none"), and links to its neighbours. Finding the lowest rank is one
//! vectorised pass, a merge moves no memory, a miss allocates nothing, and pairs of raw
//! bytes are a table lookup. Unspaced scripts (Han) make most pre-tokens misses, so
//! this loop is what their throughput is.
use rustc_hash::FxHashMap;

/// A pair with no merge.
const NO_MERGE: (u32, u32) = (u32::MAX, 0);

pub struct BytePairEncoder {
    byte_ids: [u32; 256],
    /// `(a << 8) | b` → (rank, merged id) for two raw bytes.
    byte_pairs: Box<[(u32, u32)]>,
    /// `(left << 32) | right` → (rank, merged id).
    merges: FxHashMap<u64, (u32, u32)>,
    /// `ignore_merges`: a pre-token that is itself in the vocabulary is that one token.
    whole: Option<FxHashMap<Box<[u8]>, u32>>,
}

/// Index of the leftmost lowest rank, `None` when every rank is "none". With AVX2 (checked
/// at run time; wheels are built for baseline x86-64) the passes are 8 lanes wide.
#[inline]
fn lowest(ranks: &[u32]) -> Option<usize> {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2.
        return unsafe { lowest_avx2(ranks) };
    }
    lowest_portable(ranks)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn lowest_avx2(ranks: &[u32]) -> Option<usize> {
    lowest_portable(ranks)
}

/// Two branch-free passes the compiler vectorises: the minimum, then the first block of
/// 16 holding it.
#[inline(always)]
fn lowest_portable(ranks: &[u32]) -> Option<usize> {
    let best = ranks.iter().fold(u32::MAX, |m, &r| m.min(r));
    if best == u32::MAX {
        return None;
    }
    let mut base = 0;
    for block in ranks.chunks(16) {
        if block.iter().fold(false, |found, &r| found | (r == best)) {
            return block.iter().position(|&r| r == best).map(|i| base + i);
        }
        base += 16;
    }
    None
}

/// Reusable buffers of one thread, one slot per byte of the pre-token.
#[derive(Default)]
pub struct Scratch {
    ids: Vec<u32>,
    /// Rank of the pair (symbol, next symbol); `u32::MAX` when none or merged away.
    ranks: Vec<u32>,
    merged: Vec<u32>,
    next: Vec<usize>,
    prev: Vec<usize>,
    /// Direct-mapped memo of pair lookups (key, rank, merged id): text repeats its
    /// pairs, and this stays in the core's cache where the merge map does not.
    memo: Vec<(u64, u32, u32)>,
}

const MEMO_BITS: u32 = 13;

impl Scratch {
    /// Forgets the memo: it belongs to one encoder's merges.
    pub fn reset(&mut self) {
        self.memo.clear();
    }
}

impl BytePairEncoder {
    /// From tokenizer.json's `model` (type BPE, no subword prefix or suffix) and the
    /// byte-level alphabet. An error says what is outside what this reproduces.
    pub fn from_model(model: &serde_json::Value, byte_chars: &[char; 256]) -> Result<Self, String> {
        let mut char_byte: FxHashMap<char, u8> = FxHashMap::default();
        for (b, &c) in byte_chars.iter().enumerate() {
            char_byte.insert(c, b as u8);
        }
        let to_bytes = |token: &str| -> Result<Vec<u8>, String> {
            token.chars().map(|c| char_byte.get(&c).copied().ok_or_else(|| format!("token {token:?} is not byte-level"))).collect()
        };
        let vocab_json = model["vocab"].as_object().ok_or("model has no vocab")?;
        let mut vocab: FxHashMap<Vec<u8>, u32> = FxHashMap::default();
        for (token, id) in vocab_json {
            let id = id.as_u64().ok_or_else(|| format!("token {token:?} has no integer id"))? as u32;
            vocab.insert(to_bytes(token)?, id);
        }
        let mut byte_ids = [0u32; 256];
        for b in 0..256 {
            byte_ids[b] = *vocab.get(&vec![b as u8]).ok_or_else(|| format!("byte {b} has no token"))?;
        }
        let merge_list = model["merges"].as_array().ok_or("model has no merges")?;
        let mut byte_pairs = vec![NO_MERGE; 1 << 16].into_boxed_slice();
        let mut merges = FxHashMap::default();
        merges.reserve(merge_list.len());
        for (rank, merge) in merge_list.iter().enumerate() {
            // `["a", "b"]` (tokenizers ≥ 0.20) or `"a b"`.
            let (a, b) = match merge {
                serde_json::Value::Array(p) if p.len() == 2 => (p[0].as_str(), p[1].as_str()),
                serde_json::Value::String(s) => s.split_once(' ').map_or((None, None), |(a, b)| (Some(a), Some(b))),
                _ => (None, None),
            };
            let (Some(a), Some(b)) = (a, b) else { return Err(format!("merge {rank} is malformed: {merge}")) };
            let (a, b) = (to_bytes(a)?, to_bytes(b)?);
            let id = |t: &[u8]| vocab.get(t).copied().ok_or_else(|| format!("merge {rank}: {t:?} is not in the vocabulary"));
            let joined: Vec<u8> = a.iter().chain(&b).copied().collect();
            let (left, right, new) = (id(&a)?, id(&b)?, id(&joined)?);
            // A pair listed twice keeps its last rank, as HF's merge map (collected from
            // the list) does.
            merges.insert((left as u64) << 32 | right as u64, (rank as u32, new));
            if a.len() == 1 && b.len() == 1 {
                byte_pairs[(a[0] as usize) << 8 | b[0] as usize] = (rank as u32, new);
            }
        }
        let whole = (model["ignore_merges"] == true).then(|| vocab.into_iter().map(|(t, id)| (t.into_boxed_slice(), id)).collect());
        Ok(BytePairEncoder { byte_ids, byte_pairs, merges, whole })
    }

    #[inline]
    fn pair(&self, memo: &mut [(u64, u32, u32)], left: u32, right: u32) -> (u32, u32) {
        let key = (left as u64) << 32 | right as u64;
        let slot = &mut memo[(key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - MEMO_BITS)) as usize];
        if slot.0 != key {
            let (rank, id) = self.merges.get(&key).copied().unwrap_or(NO_MERGE);
            *slot = (key, rank, id);
        }
        (slot.1, slot.2)
    }

    /// Appends the ids of one pre-token (raw bytes) to `out`.
    pub fn encode(&self, piece: &[u8], scratch: &mut Scratch, out: &mut Vec<u32>) {
        if let Some(id) = self.whole.as_ref().and_then(|w| w.get(piece)) {
            out.push(*id);
            return;
        }
        let Scratch { ids, ranks, merged, next, prev, memo } = scratch;
        if memo.is_empty() {
            memo.resize(1 << MEMO_BITS, (u64::MAX, 0, 0)); // no pair has key u64::MAX
        }
        let n = piece.len();
        ids.clear();
        ids.extend(piece.iter().map(|&b| self.byte_ids[b as usize]));
        ranks.clear();
        merged.clear();
        for w in piece.windows(2) {
            let (rank, id) = self.byte_pairs[(w[0] as usize) << 8 | w[1] as usize];
            ranks.push(rank);
            merged.push(id);
        }
        ranks.push(u32::MAX); // the last symbol starts no pair
        merged.push(0);
        next.clear();
        next.extend(1..=n);
        prev.clear();
        prev.extend((0..n).map(|i| i.wrapping_sub(1)));
        loop {
            let Some(at) = lowest(ranks) else { break };
            let gone = next[at];
            ids[at] = merged[at];
            ranks[gone] = u32::MAX;
            next[at] = next[gone];
            if next[at] < n {
                prev[next[at]] = at;
                (ranks[at], merged[at]) = self.pair(memo, ids[at], ids[next[at]]);
            } else {
                ranks[at] = u32::MAX;
            }
            let p = prev[at];
            if p < n {
                (ranks[p], merged[p]) = self.pair(memo, ids[p], ids[at]);
            }
        }
        let mut i = 0;
        while i < n {
            out.push(ids[i]);
            i = next[i];
        }
    }
}
