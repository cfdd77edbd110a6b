"""The fast tokenizer path gives exactly the HF `tokenizers` ids."""

from __future__ import annotations

import json

import pytest
from tokenizers import Tokenizer

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


def texts_for_test(tmp_path) -> list[str]:
    files = write_sample(tmp_path, seed=5)
    texts = [json.loads(line)["text"] for line in files["en"].read_text(encoding="utf-8").splitlines()[:300]]
    texts += files["zh_pairs"].read_text(encoding="utf-8").splitlines()[:300]
    texts += files["bo_mono"].read_text(encoding="utf-8").splitlines()[:300]
    for probe in sorted(PROBES.glob("*.json")) if PROBES.exists() else []:
        for q in json.loads(probe.read_text(encoding="utf-8")):
            texts.append(q["question"])
            texts.extend(q["options"])
    return texts + MIXED


def test_fast_path_equals_reference_on_every_script(tmp_path):
    tok_path = qwen25_tokenizer(tmp_path / "tok")
    hf = Tokenizer.from_file(str(tok_path))
    assert hf.get_vocab_size(with_added_tokens=True) == QWEN25_LAST_ID + 1
    texts = texts_for_test(tmp_path)
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
