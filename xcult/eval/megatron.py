"""Megatron-Core checkpoints of `xcult train`, scored directly (no export step)."""

from __future__ import annotations

from pathlib import Path

import torch


class MegatronCausalLM:
    def __init__(self, path: str | Path, device: torch.device, dtype: torch.dtype):
        from xcult.checkpoints import load_megatron

        self.device, self.dtype = device, dtype
        model, _ = load_megatron(Path(path))
        model.post_process = False  # forward returns the decoder's (final-norm) states, no logits
        self.model = model.to(device=device, dtype=dtype)

    def hidden_states(self, ids: torch.Tensor) -> torch.Tensor:
        pos = torch.arange(ids.shape[1], device=ids.device).expand_as(ids)
        return self.model(ids, pos, None).transpose(0, 1)  # [s, b, h] -> [b, s, h]

    def output_weight(self) -> torch.Tensor:
        return self.model.shared_embedding_or_output_weight()
