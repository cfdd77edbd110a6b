"""Generated benchmark corpora that resemble real text in five scripts.

Real text is Zipf-distributed at two levels: a few characters (syllables) make most of
the text, and a few words make most of the running words. Each language here has a
character inventory headed by its common characters, a word vocabulary drawn from it
(lengths as in the language), words drawn Zipf (s = 1.05) and punctuation every 5–30
characters. For unspaced scripts (Chinese) a run between punctuation is one pre-token
that almost never repeats, which is the tokenizer's hard case; spaced scripts (English,
Korean, Mongolian) and tsheg-separated Tibetan repeat their pre-tokens.

`uniform` Chinese (the earlier benchmark: uniform draws from 500 characters) is kept as
the worst case for caches.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from xcult.corpus.sample import BO_SYLLABLES, EN_WORDS, ZH_CHARS

KO_COMMON = "이다는의에가을를고하지기서한로도으리자사대수어나아해게거구그것있시라일정부전인상만우제보내면주여들적국"
BO_LETTERS = [chr(c) for c in range(0x0F40, 0x0F6A) if c != 0x0F48]
BO_SUBJOINED = [chr(c) for c in (0x0FB1, 0x0FB2, 0x0FB3, 0x0F90, 0x0F92, 0x0F94, 0x0F9F, 0x0FA3)]
BO_VOWELS = ["", "", "\u0F72", "\u0F74", "\u0F7A", "\u0F7C"]
MN_LETTERS = [chr(c) for c in range(0x1820, 0x1843)]
# Stray other-script text, so the script filter has work (as in real crawls).
STRAY = {"en": "北京 (Beijing) ལྷ་ས", "ko": "Seoul 서울", "bo": "Lhasa ལྷ་ས", "mn": "Ulaanbaatar ᠤᠯᠠᠭᠠᠨ"}


def _zipf(n: int, s: float = 1.05) -> np.ndarray:
    w = 1.0 / np.arange(1, n + 1) ** s
    return w / w.sum()


def _words(units: list[str], p: np.ndarray, lengths: tuple[list[int], list[float]], joiner: str, rng: np.random.Generator, n: int = 60_000) -> list[str]:
    """`n` words of units drawn by `p`, with lengths drawn from `lengths` (values, probabilities)."""
    sizes = rng.choice(lengths[0], size=n, p=lengths[1])
    picks = np.searchsorted(np.cumsum(p), rng.random(int(sizes.sum())) * np.sum(p))
    picks = np.minimum(picks, len(units) - 1)
    ends = np.cumsum(sizes)
    return [joiner.join(units[i] for i in picks[e - k : e]) for k, e in zip(sizes.tolist(), ends.tolist())]


class Language:
    """The inventory, vocabulary and punctuation of one generated language."""

    def __init__(self, lang: str, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.lang = lang
        self.sep, self.punct, self.punct_p = "", ["，", "。", "、", "；", "！", "？"], [0.55, 0.3, 0.06, 0.04, 0.025, 0.025]
        if lang == "en":
            # Real words head the vocabulary; 40,000 pseudo-words of English-like
            # syllables make its tail (rare words split into several BPE tokens).
            head = list(dict.fromkeys(EN_WORDS + [w + s for w in EN_WORDS for s in ("s", "ed", "ing", "er", "ly")]))
            onsets, vowels, codas = ["", "b", "c", "d", "f", "g", "h", "l", "m", "n", "p", "r", "s", "t", "v", "w", "st", "tr", "ch", "th", "pl", "br"], \
                ["a", "e", "i", "o", "u", "ea", "ou", "ai"], ["", "", "n", "r", "s", "t", "l", "nd", "ng", "st", "ck", "m"]
            syllables = [o + v + c for o in onsets for v in vowels for c in codas]
            tail = set(_words(syllables, np.ones(len(syllables)) / len(syllables), ([1, 2, 3, 4], [0.25, 0.4, 0.25, 0.1]), "", rng))
            words = head + sorted(tail - set(head))
            self.sep, self.punct, self.punct_p = " ", [",", ".", ";", "!", "?", ":"], [0.55, 0.3, 0.06, 0.04, 0.025, 0.025]
        elif lang in ("zh", "ko", "bo", "mn"):
            units = self._units(lang, rng)
            p = _zipf(len(units), 1.0)
            lengths = {"zh": ([1, 2, 3, 4], [0.3, 0.52, 0.11, 0.07]), "ko": ([1, 2, 3, 4], [0.15, 0.45, 0.3, 0.1]),
                       "bo": ([1, 2, 3], [0.45, 0.45, 0.1]), "mn": ([3, 4, 5, 6, 7], [0.15, 0.25, 0.25, 0.2, 0.15])}[lang]
            words = list(dict.fromkeys(_words(units, p, lengths, "་" if lang == "bo" else "", rng)))
            if lang == "ko":
                self.sep, self.punct = " ", [",", ".", ",", ",", "!", "?"]
            elif lang == "bo":
                self.sep, self.punct, self.punct_p = "་", ["།", "། ", "༎ "], [0.6, 0.35, 0.05]
            elif lang == "mn":
                self.sep, self.punct, self.punct_p = " ", ["᠂", "᠃ ", "᠂ "], [0.4, 0.4, 0.2]
        else:
            raise ValueError(f"no generated language {lang!r}")
        head, tail = words[: len(words) // 50], words[len(words) // 50 :]
        rng.shuffle(tail)  # words are built from Zipf characters; keep that head near the top
        self.words = head + tail
        self.cdf = np.cumsum(_zipf(len(words)))

    @staticmethod
    def _units(lang: str, rng: np.random.Generator) -> list[str]:
        if lang == "zh":
            rest = [chr(c) for c in range(0x4E00, 0x9FA6) if chr(c) not in ZH_CHARS]
            tail = [rest[i] for i in rng.choice(len(rest), size=5_500, replace=False)]
            return list(ZH_CHARS) + tail
        if lang == "ko":
            rest = [chr(c) for c in range(0xAC00, 0xD7A4) if chr(c) not in KO_COMMON]
            return list(KO_COMMON) + [rest[i] for i in rng.choice(len(rest), size=2_400, replace=False)]
        if lang == "bo":
            made = {
                rng.choice(BO_LETTERS) + (rng.choice(BO_SUBJOINED) if rng.random() < 0.3 else "") + rng.choice(BO_VOWELS)
                + (rng.choice(["ས", "ན", "ར", "ལ", "ད", "ག", "མ", "བ", ""]) if rng.random() < 0.5 else "")
                for _ in range(3_000)
            }
            return list(dict.fromkeys([s for s in BO_SYLLABLES if "་" not in s] + sorted(made)))
        return ["".join(rng.choice(MN_LETTERS, size=2)) for _ in range(400)]

    def document(self, rng: np.random.Generator) -> str:
        """5–60 clauses of 5–30 characters, each ended by punctuation."""
        n_clauses = int(rng.integers(5, 61))
        picks = iter(np.minimum(np.searchsorted(self.cdf, rng.random(n_clauses * 40)), len(self.words) - 1).tolist())
        puncts = rng.choice(len(self.punct), size=n_clauses, p=self.punct_p)
        out = []
        for c in range(n_clauses):
            target, clause, size = int(rng.integers(5, 31)), [], 0
            while size < target:
                w = self.words[next(picks)]
                clause.append(w)
                size += len(w) + len(self.sep)
            text = self.sep.join(clause)
            out.append((text[0].upper() + text[1:] if self.lang == "en" else text) + self.punct[puncts[c]])
            if self.sep == " " or self.lang == "bo":
                out.append(" " if not out[-1].endswith(" ") else "")
        if self.lang in STRAY and rng.random() < 0.2:
            out.append(STRAY[self.lang])
        return "".join(out).strip()


def uniform_zh(rng: np.random.Generator) -> str:
    """The earlier Chinese benchmark: uniform draws from 500 common characters."""
    chars = np.array(list(ZH_CHARS))
    sents = ["".join(chars[rng.integers(0, len(chars), size=int(rng.integers(6, 31)))]) + "。，；！"[int(rng.integers(0, 4))]
             for _ in range(int(rng.integers(5, 61)))]
    if rng.random() < 0.2:
        sents.append("Beijing 北京")
    return "".join(sents)


def generate(stem: Path, mb: float, lang: str, seed: int) -> list[Path]:
    """Two JSONL shards (`{"text": ...}` per line) totalling `mb` MB; reused when present."""
    paths = [stem.with_name(f"{stem.name}-{i}.jsonl") for i in range(2)]
    target = int(mb * 1_000_000) // 2
    rng = np.random.default_rng(seed)
    source = uniform_zh if lang == "zh-uniform" else Language(lang, seed).document
    for p in paths:
        if p.exists() and p.stat().st_size >= target:
            continue
        size = 0
        tmp = p.with_suffix(".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            while size < target:
                line = json.dumps({"text": source(rng)}, ensure_ascii=False) + "\n"
                f.write(line)
                size += len(line.encode())
        tmp.replace(p)
    return paths


def keep_script(lang: str) -> str:
    """The script a language's corpus keeps."""
    return {"en": "Latin", "zh": "Han", "zh-uniform": "Han", "ko": "Hangul", "bo": "Tibetan", "mn": "Mongolian"}[lang]
