//! Near-duplicate detection: MinHash signatures over shingles with banded LSH, the
//! scheme of datatrove's `MinhashDedup*` steps (and of most corpus pipelines), run
//! inside the prep engine so the document loop stays in Rust. A document whose
//! signature shares any band with an earlier kept one is a near duplicate.
//!
//! Shingles are 5-grams of words where the text has spaces between words, else of
//! characters (Chinese, Tibetan). 8 bands × 8 rows: two documents with Jaccard
//! similarity s collide in some band with probability 1 − (1 − s⁸)⁸: 0.02 at s = 0.5,
//! 0.54 at 0.8, 0.98 at 0.9.
use std::hash::{Hash, Hasher};

use rustc_hash::FxHasher;

pub const BANDS: usize = 8;
const ROWS: usize = 8;
const SHINGLE: usize = 5;

/// The band keys of a document's signature (one per band).
pub type Bands = [u64; BANDS];

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

fn hash_of<T: Hash + ?Sized>(v: &T) -> u64 {
    let mut h = FxHasher::default();
    v.hash(&mut h);
    splitmix(h.finish())
}

/// The document's band keys; a text shorter than one shingle is one shingle.
pub fn bands(text: &str) -> Bands {
    let words: Vec<&str> = text.split_whitespace().collect();
    let mut shingles: Vec<u64> = Vec::new();
    if words.len() >= 2 * SHINGLE {
        shingles.extend(words.windows(SHINGLE).map(|w| hash_of(w)));
    } else {
        let chars: Vec<char> = text.chars().filter(|c| !c.is_whitespace()).collect();
        if chars.len() <= SHINGLE {
            shingles.push(hash_of(&chars[..]));
        } else {
            shingles.extend(chars.windows(SHINGLE).map(|w| hash_of(w)));
        }
    }
    let mut mins = [u64::MAX; BANDS * ROWS];
    for &s in &shingles {
        for (i, m) in mins.iter_mut().enumerate() {
            // one hash function per row: the shingle's hash re-mixed with the row's seed
            let v = splitmix(s ^ (i as u64).wrapping_mul(0xA24B_AED4_963E_E407));
            if v < *m {
                *m = v;
            }
        }
    }
    let mut out = [0u64; BANDS];
    for (b, o) in out.iter_mut().enumerate() {
        *o = hash_of(&mins[b * ROWS..(b + 1) * ROWS]) ^ b as u64;
    }
    out
}

/// The band keys of kept documents, one set per band.
#[derive(Default)]
pub struct Lsh {
    seen: Vec<rustc_hash::FxHashSet<u64>>,
}

impl Lsh {
    /// True when `b` shares a band with a document already kept; otherwise keeps it.
    pub fn seen_or_insert(&mut self, b: &Bands) -> bool {
        if self.seen.is_empty() {
            self.seen = vec![Default::default(); BANDS];
        }
        if b.iter().zip(&self.seen).any(|(k, set)| set.contains(k)) {
            return true;
        }
        for (k, set) in b.iter().zip(self.seen.iter_mut()) {
            set.insert(*k);
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(n: usize, seed: u64) -> Vec<String> {
        (0..n).map(|i| format!("w{}", splitmix(seed * 1000 + i as u64) % 5000)).collect()
    }

    #[test]
    fn near_copies_collide_and_different_texts_do_not() {
        let base = words(300, 1);
        let mut edited = base.clone();
        edited[150] = "changed".into(); // one word of 300: Jaccard of 5-grams ~0.97
        let mut lsh = Lsh::default();
        assert!(!lsh.seen_or_insert(&bands(&base.join(" "))));
        assert!(lsh.seen_or_insert(&bands(&edited.join(" "))));
        // 200 unrelated documents: none is taken for a copy of another
        let mut lsh = Lsh::default();
        for seed in 10..210 {
            assert!(!lsh.seen_or_insert(&bands(&words(300, seed).join(" "))), "seed {seed}");
        }
    }

    #[test]
    fn half_rewritten_documents_are_kept() {
        let base = words(400, 3);
        let mut half = base.clone();
        for w in half.iter_mut().skip(1).step_by(2) {
            *w = "other".into(); // every second word changed: no 5-gram survives
        }
        let mut lsh = Lsh::default();
        assert!(!lsh.seen_or_insert(&bands(&base.join(" "))));
        assert!(!lsh.seen_or_insert(&bands(&half.join(" "))));
    }

    #[test]
    fn unspaced_text_uses_character_shingles() {
        let han: Vec<char> = "山水茶节马寺歌冬市盐丝麦花月风雪石田河林".chars().collect();
        let a: String = (0..400).map(|i| han[(splitmix(i) % han.len() as u64) as usize]).collect();
        let mut b: Vec<char> = a.chars().collect();
        b[200] = '龙';
        let b: String = b.into_iter().collect();
        let mut lsh = Lsh::default();
        assert!(!lsh.seen_or_insert(&bands(&a)));
        assert!(lsh.seen_or_insert(&bands(&b)));
        let other: String = (0..400).map(|i| han[(splitmix(i + 7777) % han.len() as u64) as usize]).collect();
        assert!(!lsh.seen_or_insert(&bands(&other)));
        assert!(!Lsh::default().seen_or_insert(&bands("")));
    }
}
