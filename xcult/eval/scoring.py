"""Cloze scoring: every option of every question in length-sorted padded batches.

The paper's metric: each option goes into the blank, the EOS id is prepended, and the
score is the mean token cross-entropy over the whole sentence; the lowest score wins.

What makes it fast without changing a number:
- right padding under a causal mask leaves every real position's hidden state exact,
  so options of many questions share one forward pass;
- the options of a question share their token prefix, and a causal model's states
  there are identical, so the LM head runs on that prefix once per question; where the
  backend takes packed rows with a mask (`hidden_states_packed`, the Hugging Face
  backend), the transformer body runs on it once too, and on no padding: each question
  is laid out as its prefix then every option's own tokens, several questions to a
  row, and a block mask lets each option see the prefix and itself only (padding to a
  common length had made 2.4x the real tokens on the paper's probes);
- a row's last token is never run (it predicts nothing and nothing attends to it);
- log-softmax is taken against the output embedding in vocabulary chunks (running
  logsumexp) in fp32, never materializing a full positions x 151,936 logit matrix.

`paper` mode instead reproduces the released script's numbers bit for bit: one bf16
forward per option, bf16 cross-entropy, first-listed option wins ties (slow by design).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from tokenizers import Tokenizer

from xcult.probes import BLANK, ProbeItem

# mean: the paper's (mean token CE of the filled sentence); sum: its total CE (lm-eval's
# `acc` on the filled sentences); per_char: total CE per character (lm-eval's `acc_norm`);
# answer_sum: CE of the tokens overlapping the option only.
Metric = Literal["mean", "sum", "per_char", "answer_sum"]
Mode = Literal["xcult", "paper"]


class CausalLM(Protocol):
    """What scoring needs from a model backend."""

    device: torch.device
    dtype: torch.dtype

    def hidden_states(self, ids: torch.Tensor) -> torch.Tensor:
        """Final-norm hidden states [B, T, d] for right-padded ids [B, T] under a causal mask."""

    def output_weight(self) -> torch.Tensor:
        """The LM head [V, d] (no bias)."""

    # Optional: `hidden_states_packed(ids [B, T], positions [B, T], mask [B, 1, T, T] bool)
    # -> states [B, T, d]`: several sequences to a row, each token attending where `mask`
    # allows.


@dataclass(frozen=True)
class Encoded:
    """One question's options as token ids (EOS first), with each option's token mask."""

    ids: list[list[int]]
    answer_mask: list[np.ndarray]  # per option: True at tokens overlapping the option text
    chars: list[int]
    prefix: int  # tokens shared by every option (>= 1: the EOS)


@dataclass(frozen=True)
class Scored:
    scores: np.ndarray  # one per option, lower is better
    prediction: int  # argmin, first-listed on ties
    n_tied: int  # options whose score equals the best
    # Per option, as lm-eval reports a continuation after the EOS: the filled sentence's
    # total log-likelihood, and whether every token of it is the model's argmax.
    loglik: np.ndarray
    greedy: np.ndarray


def encode(tokenizer: Tokenizer, eos_id: int, item: ProbeItem) -> Encoded:
    ids, masks, chars = [], [], []
    for option in item.options:
        text = item.fill(option)
        enc = tokenizer.encode(text, add_special_tokens=False)
        spans = [(a, a + len(option)) for a in option_starts(item, option)]
        overlaps = [any(s < b and a < e for a, b in spans) for s, e in enc.offsets]
        ids.append([eos_id, *enc.ids])
        masks.append(np.array([False, *overlaps], dtype=bool))
        chars.append(len(text))
    return Encoded(ids, masks, chars, _common_prefix(ids))


def option_starts(item: ProbeItem, option: str) -> list[int]:
    """Character offsets where `option` lands in `item.fill(option)` (every blank gets it)."""
    out, shift = [], 0
    for m in BLANK.finditer(item.question):
        out.append(m.start() + shift)
        shift += len(option) - (m.end() - m.start())
    return out


def _common_prefix(seqs: list[list[int]]) -> int:
    n = min(len(s) for s in seqs)
    for i in range(n):
        t = seqs[0][i]
        if any(s[i] != t for s in seqs):
            return i
    return n


def chunked_logprobs(h: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, budget: int = 1 << 21) -> tuple[torch.Tensor, torch.Tensor]:
    """log softmax(h @ weight.T)[targets] in fp32, over blocks of positions and
    vocabulary chunks of bounded size (`budget` logits, 8 MB: a block's logits stay in
    cache through the max, exp and sum passes), and whether each target is the argmax
    (the first on ties, as torch's argmax)."""
    rows = budget // 2048
    if h.shape[0] > rows:
        parts = [chunked_logprobs(h[i : i + rows], weight, targets[i : i + rows], budget) for i in range(0, h.shape[0], rows)]
        return torch.cat([lp for lp, _ in parts]), torch.cat([top for _, top in parts])
    h = h.float()
    lse = torch.full((h.shape[0],), float("-inf"), device=h.device)
    best = torch.full((h.shape[0],), float("-inf"), device=h.device)
    arg = torch.zeros(h.shape[0], dtype=torch.long, device=h.device)
    step = max(1024, budget // max(1, h.shape[0]))
    for v0 in range(0, weight.shape[0], step):
        logits = h @ weight[v0 : v0 + step].float().T
        lse = torch.logaddexp(lse, torch.logsumexp(logits, dim=1))
        m, i = logits.max(dim=1)
        better = m > best
        best, arg = torch.where(better, m, best), torch.where(better, i + v0, arg)
    return (h * weight[targets].float()).sum(dim=1) - lse, arg == targets


class ClozeScorer:
    def __init__(
        self,
        model: CausalLM,
        tokenizer: Tokenizer,
        eos_id: int,
        metric: Metric = "mean",
        mode: Mode = "xcult",
        batch_tokens: int = 16384,
    ):
        if mode == "paper" and metric != "mean":
            raise ValueError("paper mode reproduces the paper's metric only (metric = 'mean')")
        self.model, self.tokenizer, self.eos_id = model, tokenizer, eos_id
        self.metric, self.mode, self.batch_tokens = metric, mode, batch_tokens
        w = model.output_weight()
        # fp32 log-probabilities whatever the model dtype (one upcast copy, kept).
        self.weight = w if mode == "paper" or w.dtype == torch.float32 else w.float()

    def batches(self, encoded: list[Encoded]) -> list[list[int]]:
        """Question indices grouped so each batch holds about `batch_tokens` tokens: the
        tokens the body runs where the backend packs, rows x width where it pads."""
        packed = hasattr(self.model, "hidden_states_packed")
        size = [_packed_length(e) if packed else max(map(len, e.ids)) for e in encoded]
        out: list[list[int]] = []
        cur, cost = [], 0
        # Longest first, so a padded batch is as wide as its first question.
        for i in sorted(range(len(encoded)), key=lambda i: -size[i]):
            if cur and cost + (size[i] if packed else len(encoded[i].ids) * size[cur[0]]) > self.batch_tokens:
                out.append(cur)
                cur, cost = [], 0
            cur.append(i)
            cost += size[i] if packed else len(encoded[i].ids) * size[cur[0]]
        if cur:
            out.append(cur)
        return out

    @torch.inference_mode()
    def score(self, items: list[ProbeItem], progress=None) -> list[Scored]:
        encoded = [encode(self.tokenizer, self.eos_id, it) for it in items]
        if self.mode == "paper":
            return self._score_paper(encoded, progress)
        results: list[Scored | None] = [None] * len(items)
        for batch in self.batches(encoded):
            h = self._states([encoded[i] for i in batch])
            for i, scored in zip(batch, self._scores(h, [encoded[i] for i in batch])):
                results[i] = scored
            if progress is not None:
                progress(len(batch))
        return results  # type: ignore[return-value]

    def _states(self, encs: list[Encoded]) -> torch.Tensor:
        """Final-norm states [options, T, d] of a batch's options but their last tokens,
        right-padded; packed (each question's shared prefix once) where the backend can."""
        # A row's last token predicts nothing and, last under a causal mask, is attended
        # by nothing: the body never sees it.
        rows = [ids[:-1] for e in encs for ids in e.ids]
        if not hasattr(self.model, "hidden_states_packed"):
            return self.model.hidden_states(self._padded(rows))
        ids, positions, mask, where = _pack(encs, self.eos_id)
        dev = self.model.device
        hs = self.model.hidden_states_packed(ids.to(dev), positions.to(dev), mask.to(dev))
        # Row r: its question's prefix states, then its own.
        h = hs.new_zeros((len(rows), max(map(len, rows)), hs.shape[2]))
        r = 0
        for e, (row, starts) in zip(encs, where):
            c = e.prefix - 1
            for k, ids_k in enumerate(e.ids):
                n = len(ids_k) - 1 - c
                h[r, :c] = hs[row, starts[0] : starts[0] + c]
                h[r, c : c + n] = hs[row, starts[k + 1] : starts[k + 1] + n]
                r += 1
        return h

    def mean_states(self, texts: list[str], batch: int = 32) -> np.ndarray:
        """Mean final-norm hidden state over each text's tokens (after the EOS prefix), [N, d]."""
        out = []
        for start in range(0, len(texts), batch):
            rows = [[self.eos_id] + e.ids for e in self.tokenizer.encode_batch(texts[start : start + batch], add_special_tokens=False)]
            with torch.inference_mode():
                h = self.model.hidden_states(self._padded(rows)).float()
            out += [h[r, 1 : len(seq)].mean(0).cpu().numpy() for r, seq in enumerate(rows)]
        return np.stack(out)

    def _padded(self, rows: list[list[int]]) -> torch.Tensor:
        ids = torch.full((len(rows), max(map(len, rows))), self.eos_id, dtype=torch.long)
        for r, seq in enumerate(rows):
            ids[r, : len(seq)] = torch.tensor(seq)
        return ids.to(self.model.device)

    def _scores(self, h: torch.Tensor, encs: list[Encoded]) -> list[Scored]:
        # Positions whose next-token log-probability is needed: the shared prefix once
        # (taken from the question's first row), then each option's own suffix.
        rows, cols, tgts, base = [], [], [], 0
        for e in encs:
            first = e.ids[0]
            rows += [base] * (e.prefix - 1)
            cols += range(e.prefix - 1)
            tgts += first[1 : e.prefix]
            for k, seq in enumerate(e.ids):
                rows += [base + k] * (len(seq) - e.prefix)
                cols += range(e.prefix - 1, len(seq) - 1)
                tgts += seq[e.prefix :]
            base += len(e.ids)
        dev = h.device
        sel = h[torch.tensor(rows, device=dev), torch.tensor(cols, device=dev)]
        lp, top = chunked_logprobs(sel, self.weight, torch.tensor(tgts, device=dev))
        lp, top = lp.double().cpu().numpy(), top.cpu().numpy()
        out, at = [], 0
        for e in encs:
            shared, shared_top = lp[at : at + e.prefix - 1], top[at : at + e.prefix - 1].all()
            at += e.prefix - 1
            scores, loglik, greedy = [], [], []
            for k, seq in enumerate(e.ids):
                n = len(seq) - e.prefix
                token_lp = np.concatenate([shared, lp[at : at + n]])  # log p(token t | < t) for t = 1..n-1
                scores.append(self._metric(token_lp, e, k))
                loglik.append(token_lp.sum())
                greedy.append(bool(shared_top and top[at : at + n].all()))
                at += n
            out.append(_scored(np.array(scores), np.array(loglik), np.array(greedy)))
        return out

    def _metric(self, token_lp: np.ndarray, e: Encoded, k: int) -> float:
        if self.metric == "mean":
            return float(-token_lp.sum() / len(token_lp))
        if self.metric == "sum":
            return float(-token_lp.sum())
        if self.metric == "per_char":
            return float(-token_lp.sum() / e.chars[k])
        return float(-token_lp[e.answer_mask[k][1:]].sum())

    def _score_paper(self, encoded: list[Encoded], progress) -> list[Scored]:
        # One unpadded forward per option: bf16 kernels round differently with the batch
        # shape, and reproducing published numbers means reproducing the rounding too.
        out = []
        for e in encoded:
            scores, greedy = [], []
            for seq in e.ids:
                h = self.model.hidden_states(self._padded([seq]))[0, :-1]
                tgt = torch.tensor(seq[1:], device=h.device)
                logits = F.linear(h, self.weight)
                scores.append(float(F.cross_entropy(logits, tgt)))
                greedy.append(bool((logits.argmax(dim=1) == tgt).all()))
            scores = np.array(scores)
            out.append(_scored(scores, -scores * np.array([len(seq) - 1 for seq in e.ids]), np.array(greedy)))
            if progress is not None:
                progress(1)
        return out


# Width of a packed row: attention within a row grows with its square, the waste at its
# end with its width; 512 keeps attention a few percent of a 0.5B model's body.
PACK_WIDTH = 512


def _packed_length(e: Encoded) -> int:
    """Tokens a question takes packed: its prefix once, then each option's own tokens."""
    c = e.prefix - 1
    return c + sum(len(ids) - 1 - c for ids in e.ids)


def _pack(encs: list[Encoded], pad: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[tuple[int, list[int]]]]:
    """Questions packed into rows (first fit, longest first): token ids [B, W], their
    positions, the attention mask [B, 1, W, W] (a prefix token sees the prefix before it;
    an option's token the whole prefix and its option's tokens before it; padding
    itself), and per question its row and where its prefix and each option start."""
    lengths = [_packed_length(e) for e in encs]
    width = max(PACK_WIDTH, *lengths)
    fill: list[int] = []
    where: list[tuple[int, list[int]]] = [(0, [])] * len(encs)
    for q in sorted(range(len(encs)), key=lambda q: -lengths[q]):
        row = next((r for r, used in enumerate(fill) if used + lengths[q] <= width), len(fill))
        if row == len(fill):
            fill.append(0)
        where[q] = (row, [fill[row]])
        fill[row] += lengths[q]
    w = max(fill)
    ids = torch.full((len(fill), w), pad, dtype=torch.long)
    positions = torch.zeros((len(fill), w), dtype=torch.long)
    mask = torch.eye(w, dtype=torch.bool).repeat(len(fill), 1, 1, 1)
    for e, (row, starts) in zip(encs, where):
        c, at = e.prefix - 1, starts[0]
        parts = [e.ids[0][:c]] + [seq[c:-1] for seq in e.ids]
        for k, part in enumerate(parts):
            n = len(part)
            if k:
                starts.append(at)
                mask[row, 0, at : at + n, starts[0] : starts[0] + c] = True
            ids[row, at : at + n] = torch.tensor(part, dtype=torch.long)
            positions[row, at : at + n] = torch.arange(c if k else 0, (c if k else 0) + n)
            mask[row, 0, at : at + n, at : at + n] = torch.ones((n, n), dtype=torch.bool).tril()
            at += n
    return ids, positions, mask, where


def _scored(scores: np.ndarray, loglik: np.ndarray, greedy: np.ndarray) -> Scored:
    best = scores.min()
    return Scored(scores, int(np.argmin(scores)), int((scores == best).sum()), loglik, greedy)
