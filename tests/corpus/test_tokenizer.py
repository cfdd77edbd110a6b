"""The fast tokenizer path gives exactly the HF `tokenizers` ids."""

from __future__ import annotations

import json

import numpy as np
import pytest
from tokenizers import Tokenizer

from benchmarks.corpora import Language, uniform_zh
from tests.conftest import PROBES
from xcult import _core
from xcult.corpus.sample import write_sample
from xcult.tokenizer import QWEN25_LAST_ID, qwen25_tokenizer

MIXED = [
    "Hello world's  end, I'LL go (ok)...\n\n  x\t\ty 2024",
    "서울은 한국의 수도입니다. 한국어 문장 둘.",
    "ᠮᠣᠩᠭᠣᠯ\u202fᠤᠨ ᠭ\u180bᠠ ᠬᠠ\u180eᠠ ᠨ\u180fᠠ Монгол улс",
    "བོད་ཀྱི་རྒྱལ་ས་ནི་ལྷ་ས་ཡིན། ",
    "e\u0301 decomposed; <|endoftext|> inside; it'ſ; ＦＵＬＬ　ｗｉｄｔｈ",
    "\r\n\r\n   \n",
    "",
]

# Where a byte-level BPE could go wrong: long runs of one character (long pre-tokens
# where the longest token is often not BPE's), ties between equal pairs, 4-byte characters, joiners and variation selectors, combining marks with no
# base, noncharacters and private use (valid UTF-8 that looks invalid), control bytes.
ADVERSARIAL = [
    "a" * 85, "a" * 86, "a" * 257, "a" * 5000, "的" * 85, "的" * 86, "的" * 2000, "ཀ" * 300, "ᠠ" * 200, "한" * 90,
    "aaa aaaa aaaaa " * 20, "lll llll lllll", "hellllo heeeello", "!!!!!!!!!!??..." * 40, "1234567890" * 30,
    "emoji 👍🏽 👩‍👩‍👧‍👦 🇨🇳🇰🇷 ❤️ ☕︎ 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𠀀𠀁𪚥 𓀀",
    "\u0301\u0302 lone marks; a\u0301\u0302\u0303\u0304 stacked; ཀ\u0f71\u0f72\u0f80 ᠠ\u180b",
    "\ufffe\uffff\U0010ffff\ue000\U000f0000 \ufeffbom \x00\x01\x7f\x85\u2028\u2029",
    "not NFC: cafe\u0301 \u212b\u2126\u037e e\u0301\u0323 \u0f43\u0f72 \u0f40\u0f71\u0f72\u0f80 \u1100\u1161\u11a8 \u0915\u093c",
    "mixed北京Seoul서울ལྷ་སᠤᠯᠠᠭᠠᠨ2024年",
    "中文和English混排，数字123和符号%&*（全角）",
    " " * 300 + "x" + "\n" * 300 + "\t \t",
    "Ａ" * 100 + "ｶﾀｶﾅ" * 50,
]


def generated_texts(per_language: int) -> list[str]:
    """The benchmark's generated text in five scripts plus uniform Chinese."""
    rng = np.random.default_rng(7)
    languages = [Language(lang, 3) for lang in ("en", "zh", "ko", "bo", "mn")]
    texts = [language.document(rng) for language in languages for _ in range(per_language)]
    return texts + [uniform_zh(rng) for _ in range(per_language)]


def _byte_level_tokens(tok_path) -> list[bytes]:
    """The model's tokens as bytes (GPT-2's byte-to-character map undone)."""
    printable = [*range(33, 127), *range(161, 173), *range(174, 256)]
    char_of = {b: chr(b) for b in printable}
    char_of.update({b: chr(256 + i) for i, b in enumerate(b for b in range(256) if b not in char_of)})
    byte_of = {c: b for b, c in char_of.items()}
    vocab = json.loads(tok_path.read_text(encoding="utf-8"))["model"]["vocab"]
    return [bytes(byte_of[c] for c in token) for token in vocab]


def _one_char(b: bytes) -> str | None:
    try:
        text = b.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return text if len(text) == 1 else None


def partial_span_texts(tok_path) -> list[str]:
    """For every token that holds a whole character on one side of a character start and
    only part of one on the other: those two characters, completed the first valid way,
    alone and inside a Han run. Cutting a pre-token where no token spans
    (`boundaries.rs`) must see these tokens, or BPE's ids change."""
    fillers = [bytes([lead]) + bytes([x]) * n for lead in range(0xC2, 0xF5) for x in (0x80, 0xBF) for n in (0, 1, 2)]

    def first_char(candidates):
        return next((c for c in map(_one_char, candidates) if c), None)

    texts = []
    for t in _byte_level_tokens(tok_path):
        for j in range(1, len(t)):
            if 0x80 <= t[j] < 0xC0:
                continue
            i = next((i for i in range(j - 1, -1, -1) if not 0x80 <= t[i] < 0xC0), None)
            k = next((k for k in range(j + 1, len(t)) if not 0x80 <= t[k] < 0xC0), len(t))
            whole_before = _one_char(t[i:j]) if i is not None else None
            whole_after = _one_char(t[j:k])
            if (whole_before and whole_after) or (i is not None and not whole_before):
                continue  # a pair of whole characters, or a side no text can match
            before = whole_before or first_char(f + t[:j] for f in fillers)
            after = whole_after or first_char(t[j:k] + bytes([x]) * n for x in range(0x80, 0xC0) for n in (1, 2, 3))
            if before and after:
                texts += [before + after, f"中文{before}{after}的字"]
    return texts


def texts_for_test(tmp_path) -> list[str]:
    files = write_sample(tmp_path, seed=5)
    texts = [json.loads(line)["text"] for line in files["en"].read_text(encoding="utf-8").splitlines()[:300]]
    texts += files["zh_pairs"].read_text(encoding="utf-8").splitlines()[:300]
    texts += files["bo_mono"].read_text(encoding="utf-8").splitlines()[:300]
    for probe in sorted(PROBES.glob("*.json")) if PROBES.exists() else []:
        for q in json.loads(probe.read_text(encoding="utf-8")):
            texts.append(q["question"])
            texts.extend(q["options"])
    return texts + MIXED + ADVERSARIAL + generated_texts(200)


def test_fast_path_equals_reference_on_every_script(tmp_path):
    tok_path = qwen25_tokenizer(tmp_path / "tok")
    hf = Tokenizer.from_file(str(tok_path))
    assert hf.get_vocab_size(with_added_tokens=True) == QWEN25_LAST_ID + 1
    partial = partial_span_texts(tok_path)
    assert len(partial) > 400
    texts = texts_for_test(tmp_path) + partial
    fast, used_fast = _core.encode_texts(str(tok_path), "<|endoftext|>", texts)
    assert used_fast
    ref, _ = _core.encode_texts(str(tok_path), "<|endoftext|>", texts, reference=True)
    expected = [e.ids for e in hf.encode_batch(texts, add_special_tokens=False)]
    assert ref == expected
    for text, got, want in zip(texts, fast, expected, strict=True):
        assert got == want, text[:100]


def test_probes_load_when_present():
    if not PROBES.exists():
        pytest.skip("no ../shared/data/probes")
    assert len(list(PROBES.glob("*-culture-cloze_*.json"))) >= 4
