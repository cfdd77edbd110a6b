"""Model backends for scoring, imported only when chosen (torch and transformers are heavy)."""

from __future__ import annotations

import importlib
from pathlib import Path

from xcult.devices import resolve_device, resolve_dtype
from xcult.errors import ConfigError, MissingPathError

# name -> "module:Class"; each class takes (path, device, dtype) and implements scoring.CausalLM.
BACKENDS = {"hf": "xcult.eval.hf:HFCausalLM", "megatron": "xcult.eval.megatron:MegatronCausalLM"}


def backend_for(path: Path) -> str:
    """`megatron` for an `iter_<N>` checkpoint of `xcult train`, else `hf`."""
    return "megatron" if (path / "metadata.json").is_file() and path.name.startswith("iter_") else "hf"


def load_model(backend: str, path: str | Path, device: str = "auto", dtype: str = "auto", mode: str = "xcult"):
    if backend == "auto":
        backend = backend_for(Path(path))
    if backend not in BACKENDS:
        raise ConfigError(f"eval.backend: {backend!r} is not one of {', '.join(BACKENDS)}", "eval.backend")
    if not Path(path).exists():
        raise MissingPathError(f"checkpoint {path} does not exist", str(path))
    module, cls = BACKENDS[backend].split(":")
    dev = resolve_device(device)
    return getattr(importlib.import_module(module), cls)(path, dev, resolve_dtype(dtype, dev, mode))
