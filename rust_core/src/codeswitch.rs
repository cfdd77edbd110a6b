//! Code-switched bridges: before the template joins a pair ("with bridges"), each half
//! has the words a bilingual lexicon lists replaced by a translation at a seeded rate,
//! as dictionary-based code-switching pretraining does (a lexicon such as MUSE's). A
//! word and its translation then occur in the same contexts, which is what aligns
//! their embeddings; the "without" documents stay as read.
//!
//! Words are whitespace-delimited; a word not listed as it stands is looked up without
//! its leading and trailing punctuation, then lowercased. Unspaced text (Chinese) has
//! few whitespace words, so there mostly the English half switches.
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use unicode_general_category::{get_general_category, GeneralCategory as G};

use crate::bridge::Rng;
use crate::error::{Error, InputKind, IoContext, Result};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodeSwitchSpec {
    /// TSV: an English word, a tab, its translation; a word may have several lines.
    pub lexicon: PathBuf,
    /// Probability that a listed word is replaced.
    pub rate: f64,
}

/// Both directions of a lexicon: word -> its translations, in file order.
pub struct Lexicon {
    en_xx: HashMap<String, Vec<String>>,
    xx_en: HashMap<String, Vec<String>>,
    pub entries: u64,
}

/// Words looked up and words replaced, per pair.
#[derive(Debug, Default, Clone, Copy)]
pub struct Switched {
    pub listed: u32,
    pub replaced: u32,
}

impl Lexicon {
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read(path).at(path)?;
        let text = String::from_utf8(text).map_err(|e| {
            let line = 1 + e.as_bytes()[..e.utf8_error().valid_up_to()].iter().filter(|&&b| b == b'\n').count() as u64;
            Error::record(path, Some(line), InputKind::InvalidUtf8, "not valid UTF-8")
        })?;
        let mut lex = Lexicon { en_xx: HashMap::new(), xx_en: HashMap::new(), entries: 0 };
        for (i, raw) in text.lines().enumerate() {
            if raw.trim().is_empty() {
                continue;
            }
            let fields: Vec<&str> = raw.split('\t').map(str::trim).collect();
            let [en, xx] = fields[..] else {
                return Err(Error::record(path, Some(i as u64 + 1), InputKind::NotTwoFields, "expected an English word, a tab and its translation"));
            };
            if en.is_empty() || xx.is_empty() || en.contains(char::is_whitespace) || xx.contains(char::is_whitespace) {
                return Err(Error::input(path, Some(i as u64 + 1), "each side must be one word (no spaces)"));
            }
            for (map, k, v) in [(&mut lex.en_xx, en, xx), (&mut lex.xx_en, xx, en)] {
                let vs = map.entry(k.to_owned()).or_default();
                if !vs.iter().any(|x| x == v) {
                    vs.push(v.to_owned());
                }
            }
            lex.entries += 1;
        }
        if lex.entries == 0 {
            return Err(Error::input(path, None, "the lexicon has no entries"));
        }
        Ok(lex)
    }

    /// Both halves of a pair, switched with a generator seeded by the pair's place in
    /// the input, so the output does not depend on threads or batches.
    pub fn switch_pair(&self, en: &str, xx: &str, rate: f64, seed: u64, file: u32, line: u64) -> (String, String, Switched) {
        let mut rng = Rng::new(seed ^ (u64::from(file) << 48) ^ line.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let mut n = Switched::default();
        let e = switch(en, &self.en_xx, rate, &mut rng, &mut n);
        let x = switch(xx, &self.xx_en, rate, &mut rng, &mut n);
        (e, x, n)
    }
}

/// ASCII punctuation and symbols, and Unicode punctuation (`།`, `。`, `“`, ...).
fn is_punct(c: char) -> bool {
    c.is_ascii_punctuation()
        || matches!(
            get_general_category(c),
            G::ConnectorPunctuation
                | G::DashPunctuation
                | G::OpenPunctuation
                | G::ClosePunctuation
                | G::InitialPunctuation
                | G::FinalPunctuation
                | G::OtherPunctuation
        )
}

/// The text with each listed word replaced at `rate`; whitespace and punctuation kept.
fn switch(text: &str, table: &HashMap<String, Vec<String>>, rate: f64, rng: &mut Rng, n: &mut Switched) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 2);
    let mut rest = text;
    while !rest.is_empty() {
        let ws = rest.len() - rest.trim_start().len();
        out.push_str(&rest[..ws]);
        rest = &rest[ws..];
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let (word, tail) = rest.split_at(end);
        rest = tail;
        let found = table.get(word).map(|t| ("", t, "")).or_else(|| {
            let start = word.len() - word.trim_start_matches(is_punct).len();
            let core = word[start..].trim_end_matches(is_punct);
            let (pre, post) = (&word[..start], &word[start + core.len()..]);
            (!core.is_empty())
                .then(|| table.get(core).or_else(|| table.get(&core.to_lowercase())))
                .flatten()
                .map(|t| (pre, t, post))
        });
        match found {
            Some((pre, translations, post)) => {
                n.listed += 1;
                // Uniform in [0, 1) from the top 53 bits.
                if ((rng.next_u64() >> 11) as f64) / ((1u64 << 53) as f64) < rate {
                    n.replaced += 1;
                    let t = &translations[if translations.len() > 1 { rng.below(translations.len()) } else { 0 }];
                    out.push_str(pre);
                    out.push_str(t);
                    out.push_str(post);
                } else {
                    out.push_str(word);
                }
            }
            None => out.push_str(word),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lexicon(dir: &Path, text: &str) -> Result<Lexicon> {
        let p = dir.join("lex.tsv");
        std::fs::write(&p, text).unwrap();
        Lexicon::read(&p)
    }

    #[test]
    fn listed_words_switch_at_the_rate_and_nothing_else_changes() {
        let dir = tempfile::tempdir().unwrap();
        let lex = lexicon(dir.path(), "people\tཟེ\neat\tཏེཔུཟོ\nKusom\tཆསི\n\n").unwrap();
        let en = "the  Kusom people eat rine.";
        let (e, x, n) = lex.switch_pair(en, "ཡིངཏོ ཆསི ཟེ ཏེཔུཟོ ཞུཡོམུ །", 1.0, 7, 0, 3);
        assert_eq!(e, "the  ཆསི ཟེ ཏེཔུཟོ rine.");
        assert_eq!(x, "ཡིངཏོ Kusom people eat ཞུཡོམུ །");
        assert_eq!((n.listed, n.replaced), (6, 6));
        let (e0, x0, n0) = lex.switch_pair(en, "ཡིངཏོ ཆསི །", 0.0, 7, 0, 3);
        assert_eq!((e0.as_str(), x0.as_str(), n0.listed, n0.replaced), (en, "ཡིངཏོ ཆསི །", 4, 0));
        // Punctuation stays around a switched word; lowercase lookup finds "People".
        let (e, x, _) = lex.switch_pair("(People), eat!", "«ཟེ»།", 1.0, 1, 0, 1);
        assert_eq!((e.as_str(), x.as_str()), ("(ཟེ), ཏེཔུཟོ!", "«people»།"));
    }

    #[test]
    fn the_draw_depends_on_the_pairs_place_and_follows_the_rate() {
        let dir = tempfile::tempdir().unwrap();
        let lex = lexicon(dir.path(), "a\tA\nb\tB\nb\tBB\n").unwrap();
        let text = "a b ".repeat(2000);
        let (e1, _, n) = lex.switch_pair(&text, "", 0.3, 5, 1, 10);
        assert_eq!(e1, lex.switch_pair(&text, "", 0.3, 5, 1, 10).0);
        assert_ne!(e1, lex.switch_pair(&text, "", 0.3, 5, 1, 11).0);
        assert_ne!(e1, lex.switch_pair(&text, "", 0.3, 5, 2, 10).0);
        let share = n.replaced as f64 / n.listed as f64;
        assert!((share - 0.3).abs() < 0.03, "{share}");
        // Both translations of "b" are drawn.
        assert!(e1.contains(" B ") && e1.contains(" BB "));
    }

    #[test]
    fn a_bad_lexicon_line_names_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let err = lexicon(dir.path(), "a\tA\nb B\n").err().unwrap().to_string();
        assert!(err.ends_with("lex.tsv:2: expected an English word, a tab and its translation"), "{err}");
        let err = lexicon(dir.path(), "a\tA\nbe it\tB\n").err().unwrap().to_string();
        assert!(err.contains("lex.tsv:2:"), "{err}");
        assert!(lexicon(dir.path(), "\n\n").is_err());
    }
}
