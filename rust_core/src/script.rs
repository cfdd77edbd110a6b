//! Script filtering by the Unicode Script property.
//!
//! A filter keeps a set of scripts plus Common (digits, punctuation, spaces) and
//! Inherited (combining marks, kept only when the character they attach to is kept)
//! and removes every other character. Whitespace is collapsed only where a removal
//! left it behind, so a document with nothing to remove comes out byte-identical.
use std::sync::OnceLock;

use unicode_script::{Script, UnicodeScript};

use crate::error::{Error, Result};

const BLOCK: usize = 256;
const N_BLOCKS: usize = 0x110000 / BLOCK;

/// Two-level lookup from code point to `Script as u8`: the crate's own lookup is a
/// binary search, too slow for a filter meant to run at memory speed.
struct ScriptTable {
    block_of: Vec<u16>,
    leaves: Vec<[u8; BLOCK]>,
    names: [Option<Script>; 256],
    /// For a 3-byte UTF-8 character, by its lead byte's low 4 bits and second byte's low
    /// 6 bits (the 64 code points sharing cp >> 6): their one script, or MIXED.
    three: [u8; 1024],
}

const MIXED: u8 = 255;

fn table() -> &'static ScriptTable {
    static TABLE: OnceLock<ScriptTable> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut block_of = Vec::with_capacity(N_BLOCKS);
        let mut leaves: Vec<[u8; BLOCK]> = Vec::new();
        let mut seen = rustc_hash::FxHashMap::default();
        let mut names = [None; 256];
        for b in 0..N_BLOCKS {
            let mut leaf = [Script::Unknown as u8; BLOCK];
            for (i, slot) in leaf.iter_mut().enumerate() {
                if let Some(c) = char::from_u32((b * BLOCK + i) as u32) {
                    let s = c.script();
                    names[s as u8 as usize] = Some(s);
                    *slot = s as u8;
                }
            }
            let id = *seen.entry(leaf).or_insert_with(|| {
                leaves.push(leaf);
                leaves.len() - 1
            });
            block_of.push(id as u16);
        }
        let mut three = [MIXED; 1024];
        for (k, slot) in three.iter_mut().enumerate() {
            let ids: Vec<u8> = (0..64u32)
                .filter_map(|low| char::from_u32(((k as u32) << 6) | low))
                .map(|c| leaves[block_of[c as usize / BLOCK] as usize][c as usize % BLOCK])
                .collect();
            if ids.len() == 64 && ids.iter().all(|&id| id == ids[0]) {
                *slot = ids[0];
            }
        }
        ScriptTable { block_of, leaves, names, three }
    })
}

#[inline]
fn script_id(c: char) -> u8 {
    let t = table();
    let cp = c as usize;
    t.leaves[t.block_of[cp / BLOCK] as usize][cp % BLOCK]
}

/// The script of `c`, through the fast table.
pub fn script_of(c: char) -> Script {
    table().names[script_id(c) as usize].unwrap_or(Script::Unknown)
}

/// Parses a Unicode script name ("Han", "Latin", "Mongolian", or a 4-letter code).
pub fn parse_script(name: &str) -> Option<Script> {
    Script::from_full_name(name).or_else(|| Script::from_short_name(name))
}

const COMMON: u8 = Script::Common as u8;
const INHERITED: u8 = Script::Inherited as u8;
const OGHAM: u8 = Script::Ogham as u8;

/// Whitespace that a removal may collapse. No-break spaces carry meaning (U+202F
/// joins Mongolian suffixes to their stems), so they are never collapsed.
#[inline]
fn collapsible(c: char) -> bool {
    c.is_whitespace() && !matches!(c, '\u{A0}' | '\u{2007}' | '\u{202F}')
}

#[derive(Debug, Clone)]
pub struct ScriptFilter {
    keep: [bool; 256],
    /// `Script as u8` of each ASCII byte, so the common case skips the table walk.
    ascii: [u8; 128],
    keeps_latin_only: bool,
    min_chars: usize,
    /// By the first two bytes of a 3-byte character (as `ScriptTable::three`): its 64
    /// code points are all of one kept script other than Common and Inherited, so a run
    /// of them outside a gap needs nothing but moving past (Han, Hangul, Tibetan runs).
    plain3: [bool; 1024],
}

/// Characters removed from one document, by `Script as u8`.
pub type Removed = [u64; 256];

pub enum Filtered {
    Kept { text: String, removed: Removed },
    /// Nothing but whitespace was left.
    Empty { removed: Removed },
    /// Fewer than `min_chars` characters were left.
    TooShort { removed: Removed },
}

impl Filtered {
    /// The counter a dropped text is counted under (`side` prefixes pair halves).
    pub fn drop_reason(&self, side: &str) -> Option<String> {
        match self {
            Filtered::Kept { .. } => None,
            Filtered::Empty { .. } => Some(format!("{side}empty_after_filter")),
            Filtered::TooShort { .. } => Some(format!("{side}too_short")),
        }
    }

    pub fn removed(&self) -> &Removed {
        match self {
            Filtered::Kept { removed, .. } | Filtered::Empty { removed } | Filtered::TooShort { removed } => removed,
        }
    }
}

impl ScriptFilter {
    /// `keep` names the scripts to keep besides Common and Inherited.
    pub fn new(keep: &[String], min_chars: usize, key: &str) -> Result<Self> {
        let mut mask = [false; 256];
        mask[COMMON as usize] = true;
        let mut scripts = Vec::new();
        for name in keep {
            let s = parse_script(name)
                .ok_or_else(|| Error::config(key, format!("unknown Unicode script {name:?}")))?;
            mask[s as u8 as usize] = true;
            scripts.push(s);
        }
        if scripts.is_empty() {
            return Err(Error::config(key, "at least one script to keep is required"));
        }
        let keeps_latin_only = scripts.iter().all(|s| *s == Script::Latin);
        let ascii = std::array::from_fn(|b| script_id(b as u8 as char));
        let three = &table().three;
        let plain3 = std::array::from_fn(|k| {
            let id = three[k];
            id != MIXED && id != COMMON && id != OGHAM && id != INHERITED && mask[id as usize]
        });
        Ok(ScriptFilter { keep: mask, ascii, keeps_latin_only, min_chars, plain3 })
    }

    pub fn filter(&self, text: &str) -> Filtered {
        let mut removed = [0u64; 256];
        // ASCII is Latin letters plus Common: nothing to do for a Latin filter.
        if self.keeps_latin_only && text.is_ascii() {
            return self.finish(text.to_owned(), removed);
        }
        // Kept text is copied in slices: a run of kept characters ends only at a removal.
        // Whitespace kept around a removal (before and after it) collapses to what
        // `push_collapsed` leaves; a removal at the end drops the whitespace before it.
        let bytes = text.as_bytes();
        let mut out = String::with_capacity(text.len());
        let mut seg = 0; // start of the slice being kept verbatim
        let mut trail = 0; // end of its last non-whitespace character
        let mut in_gap = false; // a removal since the last kept non-whitespace character
        let (mut gap_ws, mut gap_newlines) = (false, 0usize);
        let mut prev_kept = false;
        let t = table();
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            let (cp, len, id) = if b < 0x80 {
                (b as u32, 1, self.ascii[b as usize])
            } else if (0xE0..0xF0).contains(&b) && t.three[((b as usize & 0x0F) << 6) | (bytes[i + 1] as usize & 0x3F)] != MIXED {
                if !in_gap && self.plain3[((b as usize & 0x0F) << 6) | (bytes[i + 1] as usize & 0x3F)] {
                    // The common case in CJK, Hangul and Tibetan text: a run of kept
                    // characters of the script itself, one lookup each (valid UTF-8: a
                    // lead byte E0-EF has its two continuation bytes).
                    i += 3;
                    while i < bytes.len() && bytes[i] & 0xF0 == 0xE0 && self.plain3[((bytes[i] as usize & 0x0F) << 6) | (bytes[i + 1] as usize & 0x3F)] {
                        i += 3;
                    }
                    trail = i;
                    prev_kept = true;
                    continue;
                }
                // A 3-byte character (CJK, Tibetan, Mongolian, Hangul) whose 64-code-point
                // range has one script: no decoding. Its code point matters only for Common.
                let id = t.three[((b as usize & 0x0F) << 6) | (bytes[i + 1] as usize & 0x3F)];
                let cp = if id == COMMON || id == OGHAM { decode(bytes, i).0 } else { 0 };
                (cp, 3, id)
            } else {
                let (cp, len) = decode(bytes, i);
                (cp, len, t.leaves[t.block_of[cp as usize / BLOCK] as usize][cp as usize % BLOCK])
            };
            let keep = if id == INHERITED { prev_kept } else { self.keep[id as usize] };
            if keep {
                prev_kept = true;
                // Whitespace is Common but for U+1680 (Ogham): other scripts skip the test.
                if (id == COMMON || id == OGHAM) && collapsible(char::from_u32(cp).unwrap()) {
                    if in_gap {
                        gap_ws = true;
                        gap_newlines += (cp == '\n' as u32) as usize;
                    }
                } else {
                    if in_gap {
                        if !out.is_empty() {
                            push_collapsed(&mut out, gap_ws, gap_newlines);
                        }
                        in_gap = false;
                        seg = i;
                    }
                    trail = i + len;
                }
            } else {
                removed[id as usize] += 1;
                prev_kept = false;
                if !in_gap {
                    out.push_str(&text[seg..trail]);
                    let ws = &text[trail..i];
                    (gap_ws, gap_newlines) = (!ws.is_empty(), ws.bytes().filter(|&b| b == b'\n').count());
                    in_gap = true;
                }
            }
            i += len;
        }
        if !in_gap {
            out.push_str(&text[seg..]);
        }
        self.finish(out, removed)
    }

    fn finish(&self, text: String, removed: Removed) -> Filtered {
        if text.chars().all(char::is_whitespace) {
            Filtered::Empty { removed }
        } else if self.min_chars > 0 && text.chars().take(self.min_chars).count() < self.min_chars {
            Filtered::TooShort { removed }
        } else {
            Filtered::Kept { text, removed }
        }
    }
}

/// The code point starting at `bytes[i]` (a lead byte of valid UTF-8) and its length.
#[inline]
fn decode(bytes: &[u8], i: usize) -> (u32, usize) {
    let b0 = bytes[i] as u32;
    let cont = |k: usize| (bytes[i + k] & 0x3F) as u32;
    match b0 {
        0xC0..=0xDF => (((b0 & 0x1F) << 6) | cont(1), 2),
        0xE0..=0xEF => (((b0 & 0x0F) << 12) | (cont(1) << 6) | cont(2), 3),
        _ => (((b0 & 0x07) << 18) | (cont(1) << 12) | (cont(2) << 6) | cont(3), 4),
    }
}

/// Whitespace left around a removal becomes its line breaks (at most a paragraph
/// break) or one space.
fn push_collapsed(out: &mut String, any: bool, newlines: usize) {
    match newlines {
        0 if !any => {}
        0 => out.push(' '),
        1 => out.push('\n'),
        _ => out.push_str("\n\n"),
    }
}

/// Adds per-document removal counts into a total.
pub fn add_removed(total: &mut Removed, doc: &Removed) {
    for (t, d) in total.iter_mut().zip(doc.iter()) {
        *t += d;
    }
}

/// Removal counts by script name, leaving out scripts with none removed.
pub fn removed_by_name(removed: &Removed) -> Vec<(String, u64)> {
    let t = table();
    removed
        .iter()
        .enumerate()
        .filter(|(_, &n)| n > 0)
        .map(|(i, &n)| (t.names[i].map(|s| s.full_name()).unwrap_or("Unknown").to_owned(), n))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The per-character filter this module had before the slice-copying one: the oracle.
    fn filter_reference(f: &ScriptFilter, text: &str) -> Filtered {
        let mut removed = [0u64; 256];
        // ASCII is Latin letters plus Common: nothing to do for a Latin filter.
        if f.keeps_latin_only && text.is_ascii() {
            return f.finish(text.to_owned(), removed);
        }
        let mut out = String::with_capacity(text.len());
        let mut pending_ws = String::new();
        let mut removal_in_gap = false;
        let mut prev_kept = false;
        for c in text.chars() {
            let id = script_id(c);
            let keep = match id {
                INHERITED => prev_kept,
                _ => f.keep[id as usize],
            };
            if !keep {
                removed[id as usize] += 1;
                removal_in_gap = true;
                prev_kept = false;
                continue;
            }
            prev_kept = true;
            if collapsible(c) {
                pending_ws.push(c);
                continue;
            }
            if removal_in_gap {
                if !out.is_empty() {
                    push_collapsed(&mut out, !pending_ws.is_empty(), pending_ws.chars().filter(|&c| c == '\n').count());
                }
            } else {
                out.push_str(&pending_ws);
            }
            pending_ws.clear();
            removal_in_gap = false;
            out.push(c);
        }
        if !removal_in_gap {
            out.push_str(&pending_ws);
        }
        f.finish(out, removed)
    }


    #[test]
    fn slice_copying_filter_equals_the_per_character_one() {
        // Random strings over the pieces that matter: scripts kept and removed, combining
        // marks, every kind of whitespace, no-break spaces, at every position.
        let pieces = [
            "a", "Z", "é", "\u{301}", "中", "文", "\u{1680}", "ᚁ", "ལ", "་", "ᠮ", "\u{202F}", "\u{A0}", "한", "я", "😀", "1", ".", "。", " ", "  ", "\n", "\n\n", "\t", "\r\n", "\u{3000}",
        ];
        let filters = [f(&["Latin"]), f(&["Han"]), f(&["Tibetan"]), f(&["Mongolian"]), f(&["Hangul"]), f(&["Cyrillic"]), f(&["Han", "Latin"]), f(&["Ogham"])];
        let mut state = 0x9e3779b97f4a7c15u64;
        for _ in 0..20_000 {
            let mut text = String::new();
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let n = (state % 24) as usize;
            for k in 0..n {
                let r = state.rotate_left(k as u32 * 5) ^ (k as u64).wrapping_mul(0x2545f4914f6cdd1d);
                text.push_str(pieces[(r % pieces.len() as u64) as usize]);
            }
            for flt in &filters {
                let (a, b) = (flt.filter(&text), filter_reference(flt, &text));
                let show = |x: &Filtered| match x {
                    Filtered::Kept { text, removed } => (0, text.clone(), removed.to_vec()),
                    Filtered::Empty { removed } => (1, String::new(), removed.to_vec()),
                    Filtered::TooShort { removed } => (2, String::new(), removed.to_vec()),
                };
                assert_eq!(show(&a), show(&b), "{text:?}");
            }
        }
    }

    fn f(keep: &[&str]) -> ScriptFilter {
        ScriptFilter::new(&keep.iter().map(|s| s.to_string()).collect::<Vec<_>>(), 0, "k").unwrap()
    }
    fn kept(filter: &ScriptFilter, text: &str) -> String {
        match filter.filter(text) {
            Filtered::Kept { text, .. } => text,
            _ => panic!("dropped: {text:?}"),
        }
    }

    #[test]
    fn table_agrees_with_crate_on_every_code_point() {
        for cp in 0..0x110000u32 {
            if let Some(c) = char::from_u32(cp) {
                assert_eq!(script_of(c), c.script(), "U+{cp:04X}");
            }
        }
    }

    #[test]
    fn english_drops_every_non_latin_letter() {
        let en = f(&["Latin"]);
        assert_eq!(kept(&en, "Beijing (北京) is big."), "Beijing () is big.");
        assert_eq!(kept(&en, "Seoul 서울 and Lhasa ལྷ་ས་ are far"), "Seoul and Lhasa are far");
        assert_eq!(kept(&en, "café naïve 2024, ok!"), "café naïve 2024, ok!");
        match en.filter("北京 ལྷ་ས") {
            Filtered::Empty { removed } => {
                let names = removed_by_name(&removed);
                assert!(names.contains(&("Han".into(), 2)), "{names:?}");
                assert!(names.contains(&("Tibetan".into(), 4)), "{names:?}");
            }
            _ => panic!("should be empty"),
        }
    }

    #[test]
    fn native_filters_drop_latin_and_keep_their_script() {
        assert_eq!(kept(&f(&["Han"]), "北京是China的首都。"), "北京是的首都。");
        assert_eq!(kept(&f(&["Hangul"]), "서울은 Korea 의 수도 입니다 2024."), "서울은 의 수도 입니다 2024.");
        let bo = "བོད་ཀྱི་ Tibet རྒྱལ་ས་ནི་ལྷ་ས་ཡིན། ";
        assert_eq!(kept(&f(&["Tibetan"]), bo), "བོད་ཀྱི་ རྒྱལ་ས་ནི་ལྷ་ས་ཡིན། ");
    }

    #[test]
    fn mongolian_variation_selectors_and_narrow_nbsp_survive() {
        // ᠮᠣᠩᠭᠣᠯ + NNBSP + ᠤᠨ, with FVS1..FVS4 and the vowel separator inside words.
        let mn = "ᠮᠣᠩᠭᠣᠯ\u{202F}ᠤᠨ ᠭ\u{180B}ᠠ ᠬ\u{180C}ᠠ ᠳ\u{180D}ᠠ ᠨ\u{180F}ᠠ ᠬᠠ\u{180E}ᠠ";
        let filter = f(&["Mongolian"]);
        assert_eq!(kept(&filter, mn), mn);
        let mixed = format!("{mn} Mongolia {mn}");
        assert_eq!(kept(&filter, &mixed), format!("{mn} {mn}"));
        for c in ['\u{180B}', '\u{180C}', '\u{180D}', '\u{180E}', '\u{180F}', '\u{202F}'] {
            assert!(kept(&filter, &mixed).contains(c));
        }
    }

    #[test]
    fn whitespace_is_collapsed_only_where_something_was_removed() {
        let en = f(&["Latin"]);
        assert_eq!(kept(&en, "a  b\t\tc"), "a  b\t\tc");
        assert_eq!(kept(&en, "a 中 文 b"), "a b");
        assert_eq!(kept(&en, "line one\n\n中文\n\n\nline two"), "line one\n\nline two");
        assert_eq!(kept(&en, "中文 start and end 中文"), "start and end");
        assert_eq!(kept(&en, "ab中cd"), "abcd");
    }

    #[test]
    fn inherited_marks_follow_their_base() {
        let en = f(&["Latin"]);
        // U+0301 after a Latin letter stays; after Cyrillic it goes with its base.
        assert_eq!(kept(&en, "e\u{301} д\u{301} x"), "e\u{301} x");
    }

    #[test]
    fn min_chars_and_empty_are_reported() {
        let zh = ScriptFilter::new(&["Han".to_string()], 5, "k").unwrap();
        assert!(matches!(zh.filter("English only"), Filtered::Empty { .. }));
        assert!(matches!(zh.filter("北京 Beijing"), Filtered::TooShort { .. }));
        assert!(matches!(zh.filter("北京是中国的首都"), Filtered::Kept { .. }));
    }

    #[test]
    fn unknown_script_names_the_key() {
        let err = ScriptFilter::new(&["Klingon".into()], 0, "prep.languages.zh.keep_scripts").unwrap_err();
        assert!(err.to_string().contains("prep.languages.zh.keep_scripts"), "{err}");
    }
}
