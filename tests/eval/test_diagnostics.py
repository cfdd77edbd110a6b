"""Eval diagnostics on hand-made cases: translation accuracy, embedding alignment,
unification (centred and uncentred)."""

from __future__ import annotations

import numpy as np
import torch
from tokenizers import Tokenizer, models, pre_tokenizers

from xcult.eval.diagnostics import HeldoutPair, embedding_alignment, translation_accuracy, unification

WORDS = ["<eos>", "English", "Tibetan", ":", "the", "Vold", "Kel", "x_the", "x_Vold", "x_Kel", "."]


def tokenizer() -> Tokenizer:
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="<eos>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return tok


class TableModel:
    """A 'model' whose hidden state at a position is the output embedding of a chosen
    next token: `nxt[id]` is what it predicts after token id."""

    device = torch.device("cpu")
    dtype = torch.float32

    def __init__(self, weight: torch.Tensor, nxt: dict[int, int]):
        self.weight, self.nxt = weight, nxt

    def output_weight(self):
        return self.weight

    def hidden_states(self, ids):
        return torch.stack([torch.stack([self.weight[self.nxt.get(int(t), 0)] for t in row]) for row in ids])


def test_translation_accuracy_counts_exactly_the_predicted_words():
    tok, v = tokenizer(), {w: i for i, w in enumerate(WORDS)}
    weight = torch.eye(len(WORDS)) * 10
    # After "x_the" the model predicts x_Vold: right for the Vold pair, wrong for Kel.
    model = TableModel(weight, {v["x_the"]: v["x_Vold"]})
    pairs = [
        HeldoutPair("name", "the Vold .", "x_the x_Vold .", "x_Vold", "Vold"),
        HeldoutPair("name", "the Kel .", "x_the x_Kel .", "x_Kel", "Kel"),
        HeldoutPair("value", "the Vold .", "x_the x_Vold .", "x_Vold", "Vold"),
    ]
    acc = translation_accuracy(model, tok, 0, "English: {en} Tibetan: {xx}", pairs)
    assert acc == {"name": 0.5, "value": 1.0}


def test_embedding_alignment_of_aligned_and_random_embeddings():
    tok, v = tokenizer(), {w: i for i, w in enumerate(WORDS)}
    pairs = [HeldoutPair("name", "", "", f"x_{w}", w) for w in ("the", "Vold", "Kel")]
    g = torch.Generator().manual_seed(0)
    aligned = torch.randn(len(WORDS), 16, generator=g)
    for w in ("the", "Vold", "Kel"):
        aligned[v[f"x_{w}"]] = aligned[v[w]] + 0.05 * torch.randn(16, generator=g)
    a = embedding_alignment(TableModel(aligned, {}), tok, pairs)
    assert a["embedding_top1"] == 1.0 and a["embedding_alignment"] > 0.8
    shuffled = aligned.clone()
    shuffled[[v["x_the"], v["x_Vold"], v["x_Kel"]]] = aligned[[v["x_Vold"], v["x_Kel"], v["x_the"]]]
    b = embedding_alignment(TableModel(shuffled, {}), tok, pairs)
    assert b["embedding_top1"] == 0.0 and b["embedding_alignment"] < 0


def test_unification_centred_removes_the_language_direction():
    rng = np.random.default_rng(0)
    facts = rng.normal(size=(20, 8))
    lang = np.zeros(8)
    lang[0] = 50.0  # a large shared offset makes every pair look alike uncentred
    en, xx = facts + lang, facts + lang + 0.1 * rng.normal(size=(20, 8))
    u = unification(en, xx)
    assert u["parallel"] > 0.9 and abs(u["baseline"]) < 0.2
    assert u["baseline_uncentred"] > 0.9  # the language offset dominates the raw cosine
    unrelated = unification(en, lang + rng.normal(size=(20, 8)))
    assert abs(unrelated["parallel"] - unrelated["baseline"]) < 0.3
    assert np.isnan(unification(en[:1], xx[:1])["parallel"])
