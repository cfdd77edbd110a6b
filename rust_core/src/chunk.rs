//! Splits documents into chunks of at most `max_chars` characters for retrieval:
//! paragraphs packed greedily, long paragraphs split at sentence ends, long
//! sentences at whitespace, and only a run without either cut hard.

/// Sentence-final punctuation across the supported scripts (Latin, CJK, Tibetan shad,
/// Mongolian full stops).
fn ends_sentence(c: char) -> bool {
    matches!(c, '.' | '!' | '?' | '。' | '！' | '？' | '།' | '༎' | '᠃' | '᠉')
}

/// Splits into pieces of at most `max` chars (never empty), cutting after
/// sentence ends, else after whitespace, else anywhere.
fn split_long(text: &str, max: usize, out: &mut Vec<String>) {
    let chars: Vec<char> = text.chars().collect();
    let mut start = 0;
    while start < chars.len() {
        if chars.len() - start <= max {
            out.push(chars[start..].iter().collect());
            break;
        }
        let window = &chars[start..start + max];
        let cut = window
            .iter()
            .rposition(|&c| ends_sentence(c))
            .or_else(|| window.iter().rposition(|c| c.is_whitespace()))
            .map(|p| p + 1)
            .unwrap_or(max);
        out.push(chars[start..start + cut].iter().collect());
        start += cut;
    }
}

pub fn chunk(text: &str, max_chars: usize) -> Vec<String> {
    let mut pieces = Vec::new();
    for para in text.split("\n\n").filter(|p| !p.trim().is_empty()) {
        if para.chars().count() <= max_chars {
            pieces.push(para.to_owned());
        } else {
            split_long(para, max_chars, &mut pieces);
        }
    }
    let mut chunks: Vec<String> = Vec::new();
    let mut current = String::new();
    let mut len = 0;
    for p in pieces {
        let plen = p.chars().count();
        if !current.is_empty() && len + 2 + plen > max_chars {
            chunks.push(std::mem::take(&mut current));
            len = 0;
        }
        if !current.is_empty() {
            current.push_str("\n\n");
            len += 2;
        }
        current.push_str(&p);
        len += plen;
    }
    if !current.trim().is_empty() {
        chunks.push(current);
    }
    chunks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_respect_the_limit_and_keep_all_sentences() {
        let para = "北京是中国的首都。".repeat(400);
        let text = format!("Short intro.\n\n{para}\n\nA closing line. Another one!");
        let chunks = chunk(&text, 500);
        assert!(chunks.iter().all(|c| c.chars().count() <= 500 && !c.is_empty()));
        let joined: String = chunks.concat().chars().filter(|c| !c.is_whitespace()).collect();
        let orig: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        assert_eq!(joined, orig);
        assert!(chunks[1].ends_with('。'), "cut at a sentence end");
    }

    #[test]
    fn small_paragraphs_are_packed_and_unbroken_runs_are_cut() {
        assert_eq!(chunk("a\n\nb\n\nc", 10), vec!["a\n\nb\n\nc"]);
        let run = "x".repeat(25);
        assert_eq!(chunk(&run, 10).iter().map(|c| c.len()).collect::<Vec<_>>(), vec![10, 10, 5]);
        assert_eq!(chunk("one two three", 8), vec!["one two ", "three"]);
    }
}
