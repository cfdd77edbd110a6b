"""A shared prefix runs once; every row that extends it continues its KV cache.

Exact under a causal mask: a position attends only to earlier positions, so the
prefix's keys and values do not depend on what follows it. The judge uses it for the
statements retrieved with one chunk (they share the instruction and the chunk). (The
cloze scorer packs its short questions into masked rows instead: `eval/scoring.py`.)
"""

from __future__ import annotations

import inspect

import torch


def left_padded(rows: list[list[int]], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows of different lengths left-padded to one width [B, w], and their attention
    mask (1 on real tokens)."""
    width = max(map(len, rows))
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for r, row in enumerate(rows):
        if row:
            ids[r, width - len(row) :] = torch.tensor(row)
            mask[r, width - len(row) :] = 1
    return ids, mask


def run_prefix(body, prefix: torch.Tensor, mask: torch.Tensor | None = None):
    """Hidden states of the prefix rows [B, c] and their KV cache. Prefixes of
    different lengths come left-padded with their attention `mask`."""
    kw = {} if mask is None else {"attention_mask": mask, "position_ids": (mask.cumsum(1) - 1).clamp(min=0)}
    out = body(input_ids=prefix, use_cache=True, **kw)
    return out.last_hidden_state, getattr(out, "cache", None) or out.past_key_values


def continue_prefix(body, cache, start, rows: torch.Tensor, suffix: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Hidden states of suffix rows [R, S], row r continuing prefix row rows[r] of
    `cache` (consumed: reordered in place). `start` is the position of each row's
    first suffix token (an int when no prefix was padded); right padding in `suffix`
    needs no mask, left-padded prefixes need `mask` [R, c + S]."""
    cache.reorder_cache(rows)
    start = torch.as_tensor(start, device=suffix.device).reshape(-1, 1)
    pos = (start + torch.arange(suffix.shape[1], device=suffix.device)).expand_as(suffix)
    # transformers >= 5.2x names the argument `cache`; earlier releases `past_key_values`.
    name = "cache" if "cache" in inspect.signature(body.forward).parameters else "past_key_values"
    kw = {} if mask is None else {"attention_mask": mask}
    return body(input_ids=suffix, position_ids=pos, use_cache=True, **{name: cache}, **kw).last_hidden_state
