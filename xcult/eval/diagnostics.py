"""Per-checkpoint diagnostics beside accuracy: does the model translate, and does it
store a fact once for both languages?

- translation accuracy on held-out parallel pairs (never trained on): the pair goes
  through the bridge template, and a word counts as translated when teacher-forced
  greedy decoding gives every token of its native form (names and values separately);
- embedding alignment: the cosine of a word's (output = tied input) embedding with its
  translation's, minus that with the other words' translations, and how often the
  translation is the nearest of them; a model that stores a fact once for both
  languages needs aligned words, one that translates by a lookup table does not;
- unification (seed paper 002, Rosetta): hidden states of the same statement in both
  languages against different statements, uncentred (the raw cosine, which includes the
  shared language-identity direction) and centred (each language's mean removed).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from xcult.errors import InputError


@dataclass(frozen=True)
class HeldoutPair:
    kind: str  # "name" | "value"
    en: str
    xx: str
    word: str  # the native word whose tokens are scored
    en_word: str  # its English source


def load_heldout(path: Path) -> list[HeldoutPair]:
    pairs = []
    with open(path, encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            try:
                r = json.loads(line)
                pairs.append(HeldoutPair(r["kind"], r["en"], r["xx"], r["word"], r["en_word"]))
            except (json.JSONDecodeError, KeyError, TypeError) as e:
                raise InputError(f"{path}:{line_no}: a held-out pair needs kind, en, xx, word, en_word ({e})", str(path), line_no) from None
    return pairs


def _word_span(xx_ids: list[int], word_ids: list[int]) -> int | None:
    for i in range(len(xx_ids) - len(word_ids) + 1):
        if xx_ids[i : i + len(word_ids)] == word_ids:
            return i
    return None


@torch.inference_mode()
def translation_accuracy(model, tokenizer, eos_id: int, template: str, pairs: list[HeldoutPair]) -> dict[str, float]:
    """Share of held-out pairs whose target word the model predicts, by kind. The native
    half is tokenized on its own so its ids do not depend on the template's spacing."""
    marker = "\x00"
    before, after = template.split("{xx}")
    hits: dict[str, list[bool]] = {}
    w = model.output_weight()
    for p in pairs:
        prefix = tokenizer.encode(before.replace("{en}", p.en), add_special_tokens=False).ids
        xx = tokenizer.encode(p.xx, add_special_tokens=False).ids
        word = tokenizer.encode(p.word, add_special_tokens=False).ids
        at = _word_span(xx, word)
        if at is None or marker in p.xx:
            continue
        ids = [eos_id, *prefix, *xx]
        h = model.hidden_states(torch.tensor([ids], device=model.device))[0]
        start = 1 + len(prefix) + at  # position of the word's first token
        logits = h[start - 1 : start - 1 + len(word)].float() @ w.float().T
        hits.setdefault(p.kind, []).append(bool((logits.argmax(-1).cpu() == torch.tensor(word)).all()))
    return {k: float(np.mean(v)) for k, v in sorted(hits.items())}


@torch.inference_mode()
def embedding_alignment(model, tokenizer, pairs: list[HeldoutPair]) -> dict[str, float]:
    """Over the distinct (English, native) words of the held-out pairs: mean cosine of
    translations minus mean cosine of non-translations, and top-1 retrieval accuracy.
    A word of several tokens is the mean of their embeddings."""
    words = sorted({(p.en_word, p.word) for p in pairs})
    if len(words) < 2:
        return {}
    w = model.output_weight().float()

    def vec(text: str) -> torch.Tensor:
        ids = tokenizer.encode(text, add_special_tokens=False).ids
        return w[torch.tensor(ids, device=w.device)].mean(0)

    en = torch.nn.functional.normalize(torch.stack([vec(e) for e, _ in words]), dim=1)
    xx = torch.nn.functional.normalize(torch.stack([vec(x) for _, x in words]), dim=1)
    sim = (en @ xx.T).double().cpu()
    n = len(words)
    off = (sim.sum() - sim.trace()) / (n * (n - 1))
    top1 = (sim.argmax(1) == torch.arange(n)).double().mean()
    return {"embedding_alignment": float(sim.trace() / n - off), "embedding_top1": float(top1)}


def unification(en: np.ndarray, xx: np.ndarray) -> dict[str, float]:
    """Mean cosine between a statement and its translation (`parallel`) and between a
    statement and the other items' translations (`baseline`), uncentred and centred.
    parallel > baseline means the model relates the two languages' statements."""
    if len(en) != len(xx) or len(en) < 2:
        nan = float("nan")
        return {"parallel": nan, "baseline": nan, "parallel_uncentred": nan, "baseline_uncentred": nan}

    def unit(a: np.ndarray, centre: bool) -> np.ndarray:
        a = a.astype(np.float64)
        if centre:
            a = a - a.mean(0, keepdims=True)
        return a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)

    out = {}
    for centre, suffix in ((True, ""), (False, "_uncentred")):
        sim = unit(en, centre) @ unit(xx, centre).T
        n = len(sim)
        out["parallel" + suffix] = float(np.trace(sim) / n)
        out["baseline" + suffix] = float((sim.sum() - np.trace(sim)) / (n * (n - 1)))
    return out
