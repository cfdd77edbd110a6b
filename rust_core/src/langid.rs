//! Document language identification before script filtering (lingua, models compiled
//! in; see Cargo.toml for the languages). A corpus's documents are told apart from a
//! short list of languages sharing its scripts: Russian in a Mongolian (Cyrillic)
//! corpus, Japanese kanji text in a Chinese one. Tibetan has no model.
use std::str::FromStr;

use lingua::{IsoCode639_1, Language, LanguageDetector, LanguageDetectorBuilder};

use crate::error::{Error, Result};

/// Characters of a document the detector reads: its language shows in the first
/// paragraphs, and detection time grows with length.
const SAMPLE_CHARS: usize = 2000;

pub struct LanguageId {
    detector: LanguageDetector,
    target: Language,
}

/// ISO 639-1 codes of every language compiled in.
pub fn supported() -> Vec<String> {
    let mut v: Vec<String> = Language::all().iter().map(|l| l.iso_code_639_1().to_string()).collect();
    v.sort();
    v
}

impl LanguageId {
    /// `codes`: the corpus's language, then the languages to tell it apart from
    /// (ISO 639-1); empty: no language identification.
    pub fn new(codes: &[String], key: &str) -> Result<Option<Self>> {
        if codes.is_empty() {
            return Ok(None);
        }
        let langs = codes
            .iter()
            .map(|c| {
                IsoCode639_1::from_str(c)
                    .map(|iso| Language::from_iso_code_639_1(&iso))
                    .map_err(|_| Error::config(key, format!("no language-ID model for {c:?} (models: {})", supported().join(", "))))
            })
            .collect::<Result<Vec<_>>>()?;
        if langs.len() < 2 {
            return Err(Error::config(key, "language identification needs the corpus's language and at least one other"));
        }
        Ok(Some(LanguageId { detector: LanguageDetectorBuilder::from_languages(&langs).build(), target: langs[0] }))
    }

    /// The ISO code of the language the text is in when it is another of the candidates;
    /// None when it is the corpus's language or the detector cannot decide.
    pub fn other_language(&self, text: &str) -> Option<String> {
        let sample = match text.char_indices().nth(SAMPLE_CHARS) {
            Some((i, _)) => &text[..i],
            None => text,
        };
        match self.detector.detect_language_of(sample) {
            Some(l) if l != self.target => Some(l.iso_code_639_1().to_string()),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codes(c: &[&str]) -> Vec<String> {
        c.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn japanese_in_chinese_and_russian_in_mongolian_are_found() {
        let zh = LanguageId::new(&codes(&["zh", "ja", "ko"]), "k").unwrap().unwrap();
        assert_eq!(zh.other_language("北京是中国的首都，也是政治和文化中心。"), None);
        assert_eq!(zh.other_language("東京は日本の首都で、人口が最も多い都市です。").as_deref(), Some("ja"));
        let mn = LanguageId::new(&codes(&["mn", "ru", "uk", "kk", "bg"]), "k").unwrap().unwrap();
        assert_eq!(mn.other_language("Монгол улсын нийслэл Улаанбаатар хот юм. Тус хот нь улсын хамгийн том хот."), None);
        assert_eq!(mn.other_language("Москва является столицей России и крупнейшим городом страны.").as_deref(), Some("ru"));
    }

    #[test]
    fn unknown_codes_and_lone_languages_are_config_errors() {
        let e = LanguageId::new(&codes(&["bo", "zh"]), "prep.languages.bo.language_id").err().unwrap();
        assert!(e.to_string().contains("no language-ID model for \"bo\""), "{e}");
        assert!(LanguageId::new(&codes(&["zh"]), "k").is_err());
        assert!(LanguageId::new(&[], "k").unwrap().is_none());
        assert!(supported().contains(&"mn".to_string()) && !supported().contains(&"bo".to_string()));
    }
}
