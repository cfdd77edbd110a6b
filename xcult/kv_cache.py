"""A shared prefix runs once; every row that extends it continues its KV cache.

Exact under a causal mask: a position attends only to earlier positions, so the
prefix's keys and values do not depend on what follows it. The cloze scorer uses it for
the options of a question (they share the text before the blank), the judge for the
statements retrieved with one chunk (they share the instruction and the chunk).
"""

from __future__ import annotations

import copy
import inspect

import torch


def run_prefix(body, prefix: torch.Tensor):
    """Hidden states of the prefix rows [B, c] and their KV cache."""
    out = body(input_ids=prefix, use_cache=True)
    return out.last_hidden_state, getattr(out, "cache", None) or out.past_key_values


def continue_prefix(body, cache, prefix_len: int, rows: torch.Tensor, suffix: torch.Tensor, keep: bool = False) -> torch.Tensor:
    """Hidden states of suffix rows [R, S], row r continuing prefix row rows[r] of
    `cache` (right padding in `suffix` only). `keep=True` leaves `cache` usable for
    another call (it is copied, not reordered in place)."""
    cache = copy.deepcopy(cache) if keep else cache
    cache.reorder_cache(rows)
    pos = torch.arange(prefix_len, prefix_len + suffix.shape[1], device=suffix.device).expand_as(suffix)
    # transformers >= 5.2x names the argument `cache`; earlier releases `past_key_values`.
    name = "cache" if "cache" in inspect.signature(body.forward).parameters else "past_key_values"
    return body(input_ids=suffix, position_ids=pos, use_cache=True, **{name: cache}).last_hidden_state
