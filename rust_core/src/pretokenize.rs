//! A hand-written splitter equal to the Qwen2 pre-tokenizer regex
//! `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
//! as Oniguruma runs it (ordered alternatives, backtracking). The general regex
//! engine is most of the cost of HF tokenization; this walks the text once.
use std::sync::OnceLock;

use unicode_general_category::{get_general_category, GeneralCategory as G};

/// The pattern this module implements, as it appears in tokenizer.json.
pub const QWEN2_PATTERN: &str =
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

const OTHER: u8 = 0;
const LETTER: u8 = 1;
const NUMBER: u8 = 2;
const SPACE: u8 = 3;

fn class_table() -> &'static Vec<u8> {
    static TABLE: OnceLock<Vec<u8>> = OnceLock::new();
    TABLE.get_or_init(|| {
        (0..0x110000u32)
            .map(|cp| match char::from_u32(cp) {
                None => OTHER,
                Some(c) if c.is_whitespace() => SPACE,
                Some(c) => match get_general_category(c) {
                    G::UppercaseLetter | G::LowercaseLetter | G::TitlecaseLetter | G::ModifierLetter | G::OtherLetter => LETTER,
                    G::DecimalNumber | G::LetterNumber | G::OtherNumber => NUMBER,
                    _ => OTHER,
                },
            })
            .collect()
    })
}

#[inline]
fn is_crlf(c: char) -> bool {
    c == '\r' || c == '\n'
}

/// Splits `text` into pieces (byte ranges) and appends them to `out`. Returns
/// `false`, leaving `out` unspecified, for text it does not cover: an apostrophe
/// before a non-ASCII letter, where Unicode case folding (e.g. `'ſ`) could apply.
pub fn split_qwen2(text: &str, chars: &mut Vec<(usize, char, u8)>, out: &mut Vec<(usize, usize)>) -> bool {
    let table = class_table();
    chars.clear();
    chars.extend(text.char_indices().map(|(i, c)| (i, c, table[c as usize])));
    let n = chars.len();
    let pos = |k: usize| if k < n { chars[k].0 } else { text.len() };
    let class = |k: usize| if k < n { chars[k].2 } else { u8::MAX };
    let mut i = 0;
    while i < n {
        let (_, c, cls) = chars[i];
        let end = 'piece: {
            // (?i:'s|'t|'re|'ve|'m|'ll|'d)
            if c == '\'' && i + 1 < n {
                let lower = |k: usize| -> Option<char> {
                    let ch = chars.get(k)?.1;
                    Some(ch.to_ascii_lowercase())
                };
                for k in [i + 1, i + 2] {
                    if k < n && !chars[k].1.is_ascii() && chars[k].2 == LETTER {
                        return false;
                    }
                }
                match (lower(i + 1), lower(i + 2)) {
                    (Some('s' | 't' | 'm' | 'd'), _) => break 'piece i + 2,
                    (Some('r' | 'v'), Some('e')) | (Some('l'), Some('l')) => break 'piece i + 3,
                    _ => {}
                }
            }
            // [^\r\n\p{L}\p{N}]?\p{L}+
            let letters_from = if cls == LETTER {
                Some(i)
            } else if !is_crlf(c) && cls != NUMBER && class(i + 1) == LETTER {
                Some(i + 1)
            } else {
                None
            };
            if let Some(mut j) = letters_from {
                while class(j) == LETTER {
                    j += 1;
                }
                break 'piece j;
            }
            // \p{N}
            if cls == NUMBER {
                break 'piece i + 1;
            }
            // ' ?[^\s\p{L}\p{N}]+[\r\n]*'
            if cls == OTHER || (c == ' ' && class(i + 1) == OTHER) {
                let mut j = if cls == OTHER { i } else { i + 1 };
                while class(j) == OTHER {
                    j += 1;
                }
                while j < n && is_crlf(chars[j].1) {
                    j += 1;
                }
                break 'piece j;
            }
            // Whitespace run [i, e): \s*[\r\n]+ | \s+(?!\S) | \s+
            let mut e = i;
            while class(e) == SPACE {
                e += 1;
            }
            if let Some(k) = (i..e).rev().find(|&k| is_crlf(chars[k].1)) {
                k + 1
            } else if e == n || e - i == 1 {
                e
            } else {
                e - 1
            }
        };
        out.push((pos(i), pos(end)));
        i = end;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pieces(text: &str) -> Vec<&str> {
        let (mut chars, mut out) = (Vec::new(), Vec::new());
        assert!(split_qwen2(text, &mut chars, &mut out));
        out.iter().map(|&(a, b)| &text[a..b]).collect()
    }

    #[test]
    fn splits_like_the_regex() {
        assert_eq!(pieces("Hello world's  end"), ["Hello", " world", "'s", " ", " end"]);
        assert_eq!(pieces("I'LL go, (ok)...\n\n  x"), ["I", "'LL", " go", ",", " (", "ok", ")...\n\n", " ", " x"]);
        assert_eq!(pieces("in 2024 it"), ["in", " ", "2", "0", "2", "4", " it"]);
        assert_eq!(pieces("a \n b  "), ["a", " \n", " b", "  "]);
        assert_eq!(pieces("北京是中国的首都。"), ["北京是中国的首都", "。"]);
        assert_eq!(pieces("ཀི་"), ["ཀ", "ི་"]);
    }

    #[test]
    fn apostrophe_before_non_ascii_letter_is_left_to_the_reference() {
        let (mut chars, mut out) = (Vec::new(), Vec::new());
        assert!(!split_qwen2("it'ſ", &mut chars, &mut out));
    }
}
