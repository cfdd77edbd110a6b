"""Where models run: the device and dtype every torch stage (eval, judge, translation,
dense retrieval) resolves from its config. Imported only by code that already needs torch."""

from __future__ import annotations

import torch


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def resolve_dtype(dtype: str, device: torch.device, mode: str) -> torch.dtype:
    """bf16 on GPU, fp32 on CPU; the paper's mode runs bf16 everywhere, as its script did."""
    if mode == "paper":
        return torch.bfloat16
    if dtype == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    return {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[dtype]
