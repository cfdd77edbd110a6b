//! Where a pre-token may be cut before BPE: between two characters that no vocabulary
//! token spans. BPE only ever merges two adjacent symbols into a vocabulary token, so no
//! merge crosses such a boundary and the merges on either side happen as they would on
//! each side alone: a pre-token's ids are its pieces' ids, in order. Unspaced Han (one
//! pre-token per run between punctuation, ~18 characters that almost never repeat) cuts
//! into pieces of ~1.2 characters that do repeat, so the memo answers them instead of
//! the backtracking encoder.
//!
//! A token spans the boundary between characters `c` and `d` when, cut somewhere at a
//! character start, its bytes before the cut end like `c` and its bytes after it begin
//! like `d`. Usually both sides hold the whole character (a pair of characters); a
//! byte-level token may instead hold only `c`'s last bytes (a tail) or `d`'s first
//! bytes (a head), and then matches every character that ends or begins that way.
use rustc_hash::{FxHashMap, FxHashSet};

#[derive(Default)]
pub struct Boundaries {
    /// Whole characters on both sides of some token's cut: `(c << 32) | d`; with a bit
    /// filter in front (most boundaries of unspaced text are spanned by no token, and
    /// the filter, 32 KB, says so from L1 where the set would be a miss in L2).
    pairs: FxHashSet<u64>,
    pairs_filter: BitFilter<{ 1 << 12 }>,
    /// A whole `c` before the cut, a head of `d` after it: `c` → heads.
    heads_after: FxHashMap<u32, Vec<Bytes>>,
    heads_filter: BitFilter<{ 1 << 10 }>,
    /// A tail of `c` before the cut, a whole `d` after it: `d` → tails.
    tails_before: FxHashMap<u32, Vec<Bytes>>,
    tails_filter: BitFilter<{ 1 << 10 }>,
    /// A tail and a head; and the first bytes of those heads, as a bit set.
    loose: Vec<(Bytes, Bytes)>,
    loose_firsts: [u64; 4],
}

/// Up to 4 bytes packed little-endian in a `u32`, and their number: compared with a
/// shift and a mask, not a `memcmp` call (a third of the time when they were slices).
#[derive(Clone, Copy)]
struct Bytes {
    value: u32,
    len: u32,
}

impl Bytes {
    fn of(bytes: &[u8]) -> Self {
        let mut b = [0u8; 4];
        b[..bytes.len()].copy_from_slice(bytes);
        Bytes { value: u32::from_le_bytes(b), len: bytes.len() as u32 }
    }

    /// `c`'s UTF-8 bytes, packed by arithmetic (a `memcpy` call per character was the
    /// hottest instruction of the split).
    #[inline]
    fn char(c: char) -> Self {
        let v = c as u32;
        let cont = |shift: u32| 0x80 | (v >> shift) & 0x3F;
        match v {
            0..=0x7F => Bytes { value: v, len: 1 },
            0x80..=0x7FF => Bytes { value: (0xC0 | v >> 6) | cont(0) << 8, len: 2 },
            0x800..=0xFFFF => Bytes { value: (0xE0 | v >> 12) | cont(6) << 8 | cont(0) << 16, len: 3 },
            _ => Bytes { value: (0xF0 | v >> 18) | cont(12) << 8 | cont(6) << 16 | cont(0) << 24, len: 4 },
        }
    }

    #[inline]
    fn mask(len: u32) -> u32 {
        if len >= 4 { u32::MAX } else { (1 << (8 * len)) - 1 }
    }

    #[inline]
    fn starts_with(self, head: Bytes) -> bool {
        head.len <= self.len && self.value & Self::mask(head.len) == head.value
    }

    #[inline]
    fn ends_with(self, tail: Bytes) -> bool {
        tail.len <= self.len && (self.value >> (8 * (self.len - tail.len))) & Self::mask(tail.len) == tail.value
    }
}

/// A set of hashes that may answer "maybe" for one not in it (one bit per hash, `W`
/// words of 64 bits).
struct BitFilter<const W: usize>([u64; W]);

impl<const W: usize> Default for BitFilter<W> {
    fn default() -> Self {
        BitFilter([0; W])
    }
}

impl<const W: usize> BitFilter<W> {
    #[inline]
    fn bit(key: u64) -> usize {
        (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40) as usize % (64 * W)
    }

    fn insert(&mut self, key: u64) {
        let b = Self::bit(key);
        self.0[b / 64] |= 1 << (b % 64);
    }

    #[inline]
    fn may_contain(&self, key: u64) -> bool {
        let b = Self::bit(key);
        self.0[b / 64] >> (b % 64) & 1 == 1
    }
}

/// One side of a cut in a token.
enum Side<'a> {
    Whole(char),
    Part(&'a [u8]),
}

#[inline]
fn starts_char(b: u8) -> bool {
    b < 0x80 || b >= 0xC0
}

/// The one character `bytes` spell, if they spell exactly one.
fn one_char(bytes: &[u8]) -> Option<char> {
    let mut chars = std::str::from_utf8(bytes).ok()?.chars();
    chars.next().filter(|_| chars.next().is_none())
}

impl Boundaries {
    /// From every token of the vocabulary (as bytes).
    pub fn from_tokens<'a>(tokens: impl IntoIterator<Item = &'a [u8]>) -> Self {
        let mut b = Boundaries::default();
        for t in tokens {
            for j in 1..t.len() {
                if !starts_char(t[j]) {
                    continue;
                }
                // Before the cut: from the last character start (a whole character or
                // nothing that text can hold), or, with none, a tail.
                let i = (0..j).rev().find(|&i| starts_char(t[i]));
                let before = match i {
                    Some(i) => match one_char(&t[i..j]) {
                        Some(c) => Side::Whole(c),
                        None => continue,
                    },
                    None if j <= 3 => Side::Part(&t[..j]),
                    None => continue,
                };
                // After the cut: up to the next character start; a whole character or a
                // head shorter than the character its first byte announces.
                let k = (j + 1..t.len()).find(|&k| starts_char(t[k])).unwrap_or(t.len());
                let after = match one_char(&t[j..k]) {
                    Some(d) => Side::Whole(d),
                    None if k - j < utf8_width(t[j]) => Side::Part(&t[j..k]),
                    None => continue,
                };
                match (before, after) {
                    (Side::Whole(c), Side::Whole(d)) => {
                        b.pairs.insert(key(c, d));
                        b.pairs_filter.insert(key(c, d));
                    }
                    (Side::Whole(c), Side::Part(head)) => {
                        b.heads_after.entry(c as u32).or_default().push(Bytes::of(head));
                        b.heads_filter.insert(c as u64);
                    }
                    (Side::Part(tail), Side::Whole(d)) => {
                        b.tails_before.entry(d as u32).or_default().push(Bytes::of(tail));
                        b.tails_filter.insert(d as u64);
                    }
                    (Side::Part(tail), Side::Part(head)) => {
                        b.loose.push((Bytes::of(tail), Bytes::of(head)));
                        b.loose_firsts[head[0] as usize / 64] |= 1 << (head[0] % 64);
                    }
                }
            }
        }
        b
    }

    /// Whether some token spans the boundary between `c` and `d`.
    #[inline]
    fn spanned(&self, (c, cb): (char, Bytes), (d, db): (char, Bytes)) -> bool {
        if self.pairs_filter.may_contain(key(c, d)) && self.pairs.contains(&key(c, d)) {
            return true;
        }
        let first = db.value as u8;
        (self.heads_filter.may_contain(c as u64) && self.heads_after.get(&(c as u32)).is_some_and(|heads| heads.iter().any(|&h| db.starts_with(h))))
            || (self.tails_filter.may_contain(d as u64) && self.tails_before.get(&(d as u32)).is_some_and(|tails| tails.iter().any(|&t| cb.ends_with(t))))
            || (self.loose_firsts[first as usize / 64] >> (first % 64) & 1 == 1 && self.loose.iter().any(|&(t, h)| cb.ends_with(t) && db.starts_with(h)))
    }

    /// Calls `piece(a, b, one)` for each piece `text[a..b]` between boundaries no token
    /// spans, in order (the pieces cover `text`); `one` is the piece's character when it
    /// is one character.
    #[inline]
    pub fn split(&self, text: &str, mut piece: impl FnMut(usize, usize, Option<char>)) {
        let mut chars = text.char_indices();
        let Some((_, first)) = chars.next() else { return };
        let (mut prev, mut start, mut one) = ((first, Bytes::char(first)), 0, true);
        for (at, c) in chars {
            let next = (c, Bytes::char(c));
            if self.spanned(prev, next) {
                one = false;
            } else {
                piece(start, at, one.then_some(prev.0));
                (start, one) = (at, true);
            }
            prev = next;
        }
        piece(start, text.len(), one.then_some(prev.0));
    }
}

#[inline]
fn key(c: char, d: char) -> u64 {
    (c as u64) << 32 | d as u64
}

/// Bytes of the UTF-8 character a byte starts (0 for a byte no character starts with).
fn utf8_width(b: u8) -> usize {
    match b {
        0x00..=0x7F => 1,
        0xC2..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF4 => 4,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pieces(b: &Boundaries, text: &str) -> Vec<String> {
        let mut out = Vec::new();
        b.split(text, |a, z, one| {
            assert_eq!(one, Some(&text[a..z]).filter(|p| p.chars().count() == 1).and_then(|p| p.chars().next()));
            out.push(text[a..z].to_string())
        });
        out
    }

    #[test]
    fn cuts_only_where_no_token_spans() {
        // 中国 a pair of whole characters; "的" then the first byte of any E4 character
        // (e.g. 中 = E4 B8 AD), and the last byte of 国 (9B BD) before 人: a tail.
        let tokens: Vec<Vec<u8>> = vec![
            "中国".into(),
            [&"的".as_bytes()[..], &[0xE4]].concat(),
            [&[0xBD][..], "人".as_bytes()].concat(),
            b" the".to_vec(),
            b"a".to_vec(),
        ];
        let b = Boundaries::from_tokens(tokens.iter().map(|t| &t[..]));
        assert_eq!(pieces(&b, "中国人的中文"), ["中国人", "的中", "文"]);
        assert_eq!(pieces(&b, "的文"), ["的", "文"], "文 = E6 96 87 does not begin with E4");
        assert_eq!(pieces(&b, "国中人"), ["国", "中", "人"], "中 does not end in BD");
        assert_eq!(pieces(&b, " the a"), [" the", " ", "a"]);
        assert_eq!(pieces(&b, ""), Vec::<String>::new());
        assert_eq!(pieces(&b, "x"), ["x"]);
    }

    #[test]
    fn packed_characters_are_their_utf8_bytes() {
        for c in ['a', '\u{7F}', 'é', '\u{7FF}', '中', '\u{FFFF}', '𠀀', '\u{10FFFF}'] {
            let mut b = [0u8; 4];
            let (packed, of) = (Bytes::char(c), Bytes::of(c.encode_utf8(&mut b).as_bytes()));
            assert_eq!((packed.value, packed.len), (of.value, of.len), "{c:?}");
        }
    }

    #[test]
    fn a_tail_and_a_head_in_one_token_block_every_matching_boundary() {
        // Byte BD then byte E4: any character ending in BD (好 = E5 A5 BD) before any
        // beginning with E4 (中 = E4 B8 AD).
        let tokens: Vec<Vec<u8>> = vec![vec![0xBD, 0xE4]];
        let b = Boundaries::from_tokens(tokens.iter().map(|t| &t[..]));
        assert_eq!(pieces(&b, "好中"), ["好中"]);
        assert_eq!(pieces(&b, "好文"), ["好", "文"]);
        assert_eq!(pieces(&b, "中中"), ["中", "中"]);
    }
}
