//! The tokenizer's per-thread memo from pre-token to ids. A pre-token of up to 31 bytes
//! (nearly every English one) is keyed by its bytes packed into integers, read with
//! unaligned loads from the text and masked to its length, so a lookup is an integer
//! hash and compare with no `memcpy` or `memcmp` call. Up to four ids are stored in the
//! entry itself (the slot's padding has room), more in one arena: a second cache
//! miss per hit cost a third of the lookup time. Pre-tokens of up to 15 bytes (nearly
//! all) live in a table of 32-byte slots holding key and ids together, so a lookup is
//! one cache miss (hashbrown's control bytes apart from its buckets made two, and were
//! half the lookup time), and the tokenizer prefetches the slot of a pre-token a few
//! ahead. Longer pre-tokens are not memoised: unspaced
//! runs (Han, and the long syllable runs of other scripts) almost never repeat, and
//! inserting each one cost more than the rare hit saved.
use rustc_hash::FxHashMap;

/// Longest pre-token (bytes) that is memoised.
pub const MAX_KEY: usize = 31;

/// Entries before the memo is cleared (the slots then take up to 64 MB a thread).
const LIMIT: usize = 1 << 20;

/// Slots of the one-character table (64 KB).
const CHAR_SLOTS: usize = 1 << 13;

#[derive(Default)]
pub struct PieceCache {
    /// One-character pieces whose ids are one id, direct-mapped `(char, id)`: most
    /// pieces of unspaced text (`boundaries.rs`) are one character, and this answers them
    /// with one load where the map takes a hash and a probe.
    chars: Vec<(u32, u32)>,
    /// Pre-tokens of up to 15 bytes.
    short: Slots,
    /// Pre-tokens of 16 to 31 bytes.
    long: FxHashMap<(u128, u128), Ids>,
    arena: Vec<u32>,
    /// The tokenizer whose ids these are.
    owner: u64,
}

/// Up to four ids, `NONE` after the last; or `[NONE, at, n, _]`: `n` ids from
/// `arena[at..]`. No id is `NONE` (no vocabulary has 2^32 entries).
type Ids = [u32; 4];

const NONE: u32 = u32::MAX;

/// Bytes `text[at..at + n]` (n ≤ 15) in the low bytes, n in the top byte: distinct
/// pieces get distinct keys (a piece ending in zero bytes differs in length).
#[inline]
fn packed(text: &[u8], at: usize, n: usize) -> u128 {
    let v = match text.get(at..at + 16) {
        Some(b) => u128::from_le_bytes(b.try_into().unwrap()) & ((1u128 << (8 * n)) - 1),
        None => {
            let mut b = [0u8; 16];
            b[..n].copy_from_slice(&text[at..at + n]);
            u128::from_le_bytes(b)
        }
    };
    v | (n as u128) << 120
}

/// Open addressing with linear probing, at most half full; key 0 marks an empty slot
/// (a packed key holds its length, at least 1).
#[derive(Default)]
struct Slots {
    slots: Vec<Slot>,
    len: usize,
    shift: u32,
}

#[derive(Clone, Copy, Default)]
#[repr(C, align(32))]
struct Slot {
    key: u128,
    ids: Ids,
}

impl Slots {
    const FIRST: usize = 1 << 14;

    #[inline]
    fn home(&self, key: u128) -> usize {
        const K: u64 = 0x9E37_79B9_7F4A_7C15;
        let h = ((key as u64).wrapping_mul(K) ^ (key >> 64) as u64).wrapping_mul(K);
        (h >> self.shift) as usize
    }

    #[inline]
    fn get(&self, key: u128) -> Option<&Ids> {
        if self.slots.is_empty() {
            return None;
        }
        let mask = self.slots.len() - 1;
        let mut i = self.home(key);
        loop {
            let slot = &self.slots[i];
            if slot.key == key {
                return Some(&slot.ids);
            }
            if slot.key == 0 {
                return None;
            }
            i = (i + 1) & mask;
        }
    }

    #[inline]
    fn prefetch(&self, key: u128) {
        #[cfg(target_arch = "x86_64")]
        if let Some(slot) = self.slots.get(self.home(key)) {
            // SAFETY: a prefetch is only a hint; the address is a valid slot.
            unsafe { std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(slot as *const Slot as *const i8) }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = key;
    }

    fn insert(&mut self, key: u128, ids: Ids) {
        if 2 * (self.len + 1) > self.slots.len() {
            let old = std::mem::take(&mut self.slots);
            let size = (2 * old.len()).max(Self::FIRST);
            (self.slots, self.len, self.shift) = (vec![Slot::default(); size], 0, 64 - size.trailing_zeros());
            old.into_iter().filter(|s| s.key != 0).for_each(|s| self.insert(s.key, s.ids));
        }
        let mask = self.slots.len() - 1;
        let mut i = self.home(key);
        while self.slots[i].key != 0 && self.slots[i].key != key {
            i = (i + 1) & mask;
        }
        self.len += usize::from(self.slots[i].key == 0);
        self.slots[i] = Slot { key, ids };
    }
}

impl PieceCache {
    /// Starts over when the tokenizer changed or the memo is full.
    pub fn prepare(&mut self, owner: u64) {
        if self.owner != owner || self.short.len + self.long.len() >= LIMIT {
            self.short = Slots::default();
            self.long.clear();
            self.arena.clear();
            self.chars.clear();
            self.chars.resize(CHAR_SLOTS, (NONE, NONE));
            self.owner = owner;
        }
    }

    #[inline]
    fn char_slot(c: char) -> usize {
        ((c as u32).wrapping_mul(0x9E37_79B1) >> (32 - CHAR_SLOTS.trailing_zeros())) as usize
    }

    /// The one id of the one-character piece `c`, if known.
    #[inline]
    pub fn char_id(&self, c: char) -> Option<u32> {
        let (k, id) = self.chars[Self::char_slot(c)];
        (k == c as u32).then_some(id)
    }

    /// Starts loading the slot of the piece `text[a..b]` into cache, for a lookup soon.
    #[inline]
    pub fn prefetch(&self, text: &[u8], a: usize, b: usize) {
        if b - a <= 15 {
            self.short.prefetch(packed(text, a, b - a));
        }
    }

    /// Remembers that the piece `c` is the one id `id` (displacing the slot's last).
    #[inline]
    pub fn insert_char(&mut self, c: char, id: u32) {
        self.chars[Self::char_slot(c)] = (c as u32, id);
    }

    /// Appends the memoised ids of the piece `text[a..b]` to `out`; false when there are
    /// none.
    #[inline]
    pub fn extend(&self, text: &[u8], a: usize, b: usize, out: &mut Vec<u32>) -> bool {
        let n = b - a;
        let found = if n <= 15 {
            self.short.get(packed(text, a, n))
        } else if n <= MAX_KEY {
            let head = u128::from_le_bytes(text[a..a + 16].try_into().unwrap());
            self.long.get(&(head, packed(text, a + 16, n - 16)))
        } else {
            None
        };
        let Some(ids) = found else { return false };
        if ids[0] == NONE {
            out.extend_from_slice(&self.arena[ids[1] as usize..(ids[1] + ids[2]) as usize]);
        } else {
            ids.iter().take_while(|&&id| id != NONE).for_each(|&id| out.push(id));
        }
        true
    }

    /// Memoises `ids` for the piece `text[a..b]` when it is short enough.
    #[inline]
    pub fn insert(&mut self, text: &[u8], a: usize, b: usize, ids: &[u32]) {
        let n = b - a;
        if n > MAX_KEY {
            return;
        }
        let mut value = [NONE; 4];
        if ids.len() <= 4 {
            value[..ids.len()].copy_from_slice(ids);
        } else {
            value[1..3].copy_from_slice(&[self.arena.len() as u32, ids.len() as u32]);
            self.arena.extend_from_slice(ids);
        }
        if n <= 15 {
            self.short.insert(packed(text, a, n), value);
        } else {
            let head = u128::from_le_bytes(text[a..a + 16].try_into().unwrap());
            self.long.insert((head, packed(text, a + 16, n - 16)), value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every piece of every length up to 40 at every offset of a text with zero bytes,
    /// so pieces near the end take the copying path and some differ only by a trailing
    /// zero byte.
    #[test]
    fn each_piece_gets_its_own_ids_and_long_pieces_are_not_kept() {
        let text: Vec<u8> = (0..60u32).map(|i| if i % 7 == 3 { 0 } else { (i * 37 % 251) as u8 }).collect();
        let pieces: Vec<(usize, usize)> = (0..text.len()).flat_map(|a| (a + 1..=(a + 40).min(text.len())).map(move |b| (a, b))).collect();
        let ids = |k: usize| -> Vec<u32> { (0..=k % 7).map(|j| (k * 10 + j) as u32).collect() };
        let mut c = PieceCache::default();
        c.prepare(1);
        let mut first = std::collections::HashMap::new();
        for (k, &(a, b)) in pieces.iter().enumerate() {
            first.entry(&text[a..b]).or_insert_with(|| {
                c.insert(&text, a, b, &ids(k));
                ids(k)
            });
        }
        for &(a, b) in &pieces {
            let mut out = vec![7];
            let hit = c.extend(&text, a, b, &mut out);
            if b - a > MAX_KEY {
                assert!(!hit && out == [7]);
            } else {
                assert!(hit, "{a}..{b}");
                assert_eq!(out[1..], first[&text[a..b]][..], "{a}..{b}");
            }
        }
        let (a, b) = pieces[0];
        assert!(b - a <= MAX_KEY);
        c.prepare(1);
        assert!(c.extend(&text, a, b, &mut Vec::new()), "the same tokenizer keeps its ids");
        c.prepare(2);
        assert!(!c.extend(&text, a, b, &mut Vec::new()), "another tokenizer's ids are dropped");
    }

    #[test]
    fn the_slots_keep_every_key_through_growth_and_replace_in_place() {
        let mut t = Slots::default();
        assert!(t.get(1 << 120).is_none(), "an empty table answers");
        // Keys that differ only in high bytes, in the length byte, or by one low bit.
        let key = |i: u128| (1 + i % 15) << 120 | (i * 0x0101_0000_0000_0001) % (1 << 100);
        let n = 100_000u128;
        for i in 0..n {
            t.insert(key(i), [i as u32, NONE, NONE, NONE]);
        }
        t.insert(key(7), [8, 9, NONE, NONE]);
        assert_eq!(t.len, n as usize);
        assert!(t.slots.len() >= 2 * t.len && t.slots.len().is_power_of_two());
        for i in 0..n {
            let want = if i == 7 { [8, 9, NONE, NONE] } else { [i as u32, NONE, NONE, NONE] };
            assert_eq!(t.get(key(i)), Some(&want), "{i}");
        }
        assert!(t.get(key(n)).is_none());
    }

    #[test]
    fn one_character_pieces_keep_their_id_until_displaced_or_dropped() {
        let mut c = PieceCache::default();
        c.prepare(1);
        let chars: Vec<char> = ('\u{4E00}'..='\u{9FFF}').collect();
        assert!(chars.iter().all(|&ch| c.char_id(ch).is_none()));
        for (i, &ch) in chars.iter().enumerate() {
            c.insert_char(ch, i as u32);
        }
        // Every answer is the character's own id; 20,992 characters fill most slots.
        let known: Vec<_> = chars.iter().enumerate().filter_map(|(i, &ch)| c.char_id(ch).map(|id| (i, id))).collect();
        assert!(known.iter().all(|&(i, id)| id == i as u32));
        assert!(c.char_id(*chars.last().unwrap()).is_some());
        assert!(known.len() > CHAR_SLOTS * 3 / 4 && known.len() <= CHAR_SLOTS, "{}", known.len());
        c.prepare(2);
        assert!(chars.iter().all(|&ch| c.char_id(ch).is_none()), "another tokenizer's ids are dropped");
    }
}
