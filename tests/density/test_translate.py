"""Translation before judging, with a real (random, tiny) seq2seq model: which texts are
translated, and that the cache makes a rerun translate nothing."""

from __future__ import annotations

import shutil

import pytest

pytest.importorskip("transformers")

from xcult.config import TranslateConfig  # noqa: E402
from xcult.density.translate import translate_pairs  # noqa: E402


@pytest.fixture(scope="module")
def tiny_seq2seq(tmp_path_factory, qwen_tokenizer_json):
    import torch
    from transformers import BartConfig, BartForConditionalGeneration

    d = tmp_path_factory.mktemp("bart")
    eos = 151643
    cfg = BartConfig(
        vocab_size=151936, d_model=32, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2, decoder_attention_heads=2,
        encoder_ffn_dim=64, decoder_ffn_dim=64, max_position_embeddings=256,
        pad_token_id=eos, bos_token_id=eos, eos_token_id=eos, decoder_start_token_id=eos,
    )
    torch.manual_seed(0)
    BartForConditionalGeneration(cfg).save_pretrained(d)
    shutil.copyfile(qwen_tokenizer_json, d / "tokenizer.json")
    return d


def test_only_configured_languages_are_translated_and_cached(tiny_seq2seq, tmp_path):
    cfg = TranslateConfig(model=str(tiny_seq2seq), languages=["bo"], max_new_tokens=4, device="cpu", batch_size=2)
    langs = ["bo", "en", "bo"]
    statements = ["ལྷ་ས་ནི་རྒྱལ་ས་ཡིན།", "Lhasa is the capital.", "ལྷ་ས་ནི་རྒྱལ་ས་ཡིན།"]
    chunks = ["བོད་ཀྱི་རྒྱལ་ས།", "The capital of Tibet.", "ཁྲོམ་ལ་འབྲས་འཚོང་།"]
    s, c, n = translate_pairs(cfg, langs, statements, chunks, tmp_path / "cache")
    assert n == 3  # one shared statement + two chunks
    assert s[1] == statements[1] and c[1] == chunks[1]
    assert s[0] == s[2] and s[0] != statements[0] and c[0] != chunks[0] and c[2] != chunks[2]
    again = translate_pairs(cfg, langs, statements, chunks, tmp_path / "cache")
    assert again == (s, c, 0)
