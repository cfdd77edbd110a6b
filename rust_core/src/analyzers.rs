//! Per-language term analysis for BM25 retrieval over the five study languages.
//!
//! General-purpose analyzers break on these scripts: an unspaced Han run becomes one
//! token, Tibetan vowel signs (combining marks) are treated as separators, Mongolian
//! words split at their free variation selectors. Here a "word character" is a letter,
//! digit or combining mark, and each language decides what a term is:
//!
//! - en: words, lowercased, Latin diacritics folded to ASCII;
//! - zh: Han character unigrams and bigrams within a run; other words as in en;
//! - ko: spaced words, plus Hangul syllable bigrams inside words of three or more syllables;
//! - bo: syllables (split at tsheg U+0F0B and shad U+0F0D-U+0F12), plus bigrams of
//!   syllables within a clause;
//! - mn: free variation selectors U+180B-U+180D, U+180F and the vowel separator
//!   U+180E dropped, words split at U+202F (narrow no-break space, which joins
//!   suffixes in the traditional script); Cyrillic lowercased.
use unicode_general_category::{get_general_category, GeneralCategory as G};
use unicode_normalization::UnicodeNormalization;
use unicode_script::Script;

use crate::error::{Error, Result};
use crate::script::script_of;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Analyzer {
    En,
    Zh,
    Ko,
    Bo,
    Mn,
}

const TSHEG: char = '\u{0F0B}';
const NNBSP: char = '\u{202F}';

fn is_mark(c: char) -> bool {
    matches!(get_general_category(c), G::NonspacingMark | G::SpacingMark | G::EnclosingMark)
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || is_mark(c)
}

fn is_shad(c: char) -> bool {
    ('\u{0F0D}'..='\u{0F12}').contains(&c)
}

fn is_mongolian_dropped(c: char) -> bool {
    ('\u{180B}'..='\u{180F}').contains(&c)
}

/// Lowercase; Latin letters lose their diacritics (é -> e, as do decomposed e + U+0301).
/// Other scripts keep every character: their marks are part of the letter.
fn fold(word: &str) -> String {
    if word.is_ascii() {
        return word.to_ascii_lowercase();
    }
    let mut out = String::with_capacity(word.len());
    let mut after_latin = false;
    for c in word.chars() {
        if is_mark(c) && after_latin {
            continue;
        }
        after_latin = script_of(c) == Script::Latin;
        let base = if after_latin { c.nfd().next().unwrap_or(c) } else { c };
        out.extend(base.to_lowercase());
    }
    out
}

/// Maximal runs of word characters, with `split` characters also ending a run.
fn words<'a>(text: &'a str, split: impl Fn(char) -> bool + 'a) -> impl Iterator<Item = &'a str> + 'a {
    text.split(move |c: char| !is_word_char(c) || split(c)).filter(|w| !w.is_empty())
}

/// Sub-runs of `word` by whether `pred` holds (e.g. Han vs not), marks joining their base.
fn runs_by(word: &str, pred: impl Fn(char) -> bool) -> Vec<(bool, &str)> {
    let mut out: Vec<(bool, &str)> = Vec::new();
    let mut start = 0;
    let mut cur: Option<bool> = None;
    for (i, c) in word.char_indices() {
        let k = if is_mark(c) { cur.unwrap_or(false) } else { pred(c) };
        if cur.is_some_and(|p| p != k) {
            out.push((cur.unwrap(), &word[start..i]));
            start = i;
        }
        cur = Some(k);
    }
    if let Some(k) = cur {
        out.push((k, &word[start..]));
    }
    out
}

fn unigrams_bigrams(run: &str, out: &mut Vec<String>) {
    let chars: Vec<char> = run.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        out.push(c.to_string());
        if let Some(&d) = chars.get(i + 1) {
            out.push([c, d].iter().collect());
        }
    }
}

impl Analyzer {
    pub fn for_language(lang: &str) -> Result<Self> {
        Ok(match lang {
            "en" => Analyzer::En,
            "zh" => Analyzer::Zh,
            "ko" => Analyzer::Ko,
            "bo" => Analyzer::Bo,
            "mn" => Analyzer::Mn,
            other => return Err(Error::config("language", format!("no analyzer for language {other:?} (en, zh, ko, bo, mn)"))),
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Analyzer::En => "xcult_en",
            Analyzer::Zh => "xcult_zh",
            Analyzer::Ko => "xcult_ko",
            Analyzer::Bo => "xcult_bo",
            Analyzer::Mn => "xcult_mn",
        }
    }

    /// Appends the terms of `text` to `out`, in text order.
    pub fn terms(self, text: &str, out: &mut Vec<String>) {
        match self {
            Analyzer::En => out.extend(words(text, |_| false).map(fold)),
            Analyzer::Zh => {
                for w in words(text, |_| false) {
                    for (han, run) in runs_by(w, |c| script_of(c) == Script::Han) {
                        if han {
                            unigrams_bigrams(run, out);
                        } else {
                            out.push(fold(run));
                        }
                    }
                }
            }
            Analyzer::Ko => {
                for w in words(text, |_| false) {
                    for (hangul, run) in runs_by(w, |c| script_of(c) == Script::Hangul) {
                        out.push(fold(run));
                        let syl: Vec<char> = run.chars().collect();
                        if hangul && syl.len() > 2 {
                            out.extend(syl.windows(2).map(|p| p.iter().collect::<String>()));
                        }
                    }
                }
            }
            Analyzer::Bo => {
                // Clauses end at shad and at anything that is neither a word character nor a
                // tsheg; inside a clause, tsheg separates syllables.
                for clause in text.split(|c: char| is_shad(c) || !(is_word_char(c) || c == TSHEG)) {
                    let syllables: Vec<&str> = clause.split(TSHEG).filter(|s| !s.is_empty()).collect();
                    for (i, s) in syllables.iter().enumerate() {
                        out.push(fold(s));
                        if let Some(next) = syllables.get(i + 1) {
                            out.push(format!("{s}{TSHEG}{next}"));
                        }
                    }
                }
            }
            Analyzer::Mn => {
                let cleaned: String = text.chars().filter(|&c| !is_mongolian_dropped(c)).collect();
                out.extend(words(&cleaned, |c| c == NNBSP).map(|w| w.to_lowercase()));
            }
        }
    }

    pub fn analyze(self, text: &str) -> Vec<String> {
        let mut out = Vec::new();
        self.terms(text, &mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn english_lowercases_and_folds() {
        assert_eq!(Analyzer::En.analyze("Café Déjà-vu, ÉCOLE 42!"), ["cafe", "deja", "vu", "ecole", "42"]);
    }

    #[test]
    fn chinese_unigrams_and_bigrams() {
        assert_eq!(Analyzer::Zh.analyze("泰山，在东"), ["泰", "泰山", "山", "在", "在东", "东"]);
        // digits beside Han are their own word
        assert_eq!(Analyzer::Zh.analyze("2023年"), ["2023", "年"]);
    }

    #[test]
    fn korean_words_and_syllable_bigrams() {
        assert_eq!(Analyzer::Ko.analyze("김치를 먹다"), ["김치를", "김치", "치를", "먹다"]);
    }

    #[test]
    fn tibetan_syllables_keep_vowel_signs_and_pair_within_clauses() {
        // "bod kyi rgyal sa ni lha sa yin/" with vowel signs and subjoined letters (marks)
        let t = Analyzer::Bo.analyze("བོད་ཀྱི་རྒྱལ་ས། ལྷ་ས");
        assert_eq!(t, ["བོད", "བོད་ཀྱི", "ཀྱི", "ཀྱི་རྒྱལ", "རྒྱལ", "རྒྱལ་ས", "ས", "ལྷ", "ལྷ་ས", "ས"]);
        assert!(t.iter().all(|s| s.chars().all(|c| script_of(c) == Script::Tibetan)));
    }

    #[test]
    fn mongolian_drops_selectors_and_splits_at_nnbsp() {
        // ᠮᠣᠩᠭᠣᠯ + FVS1 + NNBSP + suffix ᠤᠨ; and MVS inside a word
        let t = Analyzer::Mn.analyze("ᠮᠣᠩᠭᠣᠯ\u{180B}\u{202F}ᠤᠨ ᠭᠠᠷ\u{180E}ᠠ Монгол");
        assert_eq!(t, ["ᠮᠣᠩᠭᠣᠯ", "ᠤᠨ", "ᠭᠠᠷᠠ", "монгол"]);
        assert!(t.iter().all(|w| !w.chars().any(|c| is_mongolian_dropped(c) || c == NNBSP)));
    }

    #[test]
    fn unknown_language_is_a_config_error() {
        assert!(matches!(Analyzer::for_language("xx"), Err(Error::Config { .. })));
    }
}
