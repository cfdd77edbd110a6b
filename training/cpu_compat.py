"""Megatron-Core without CUDA: the patches that let one training loop run on CPU.

Megatron-Core 0.19 assumes CUDA in a few modules: tensors created with device="cuda" or
torch.cuda.current_device(), the CUDA RNG tracker, CUDA streams and synchronisation, and
`.type() == "torch.cuda.FloatTensor"` checks. `apply()` (a no-op when CUDA is present)
gives exactly those modules a `torch` whose `cuda` namespace answers for the CPU and whose
tensor factories map "cuda" to "cpu", and replaces the one function that asserts CUDA
tensor types (gradient clipping). Nothing else changes: the model, data, DDP, optimizer, schedule and checkpoint
code paths are Megatron's own. Never install Transformer Engine on CPU machines.
"""

from __future__ import annotations

import contextlib
import importlib
import types

import torch

# Modules whose CUDA assumptions the shim covers (found by running the loop on CPU).
PATCHED_MODULES = [
    "megatron.core.tensor_parallel.random",
    "megatron.core.models.common.embeddings.rotary_pos_embedding",
    "megatron.core.utils",
    "megatron.core.transformer.utils",
    "megatron.core.distributed.param_and_grad_buffer",
    "megatron.core.optimizer.optimizer",
    "megatron.core.optimizer.clip_grads",
    "megatron.core.pipeline_parallel.schedules",
    "megatron.core.dist_checkpointing.strategies.filesystem_async",
    "megatron.core.dist_checkpointing.strategies.state_dict_saver",
]

_FACTORIES = ("tensor", "zeros", "ones", "empty", "full", "arange", "zeros_like", "empty_like", "ones_like")


def _cpu_device(device):
    if device is None:
        return None
    if isinstance(device, int) or (isinstance(device, str) and device.startswith("cuda")):
        return "cpu"
    if isinstance(device, torch.device) and device.type == "cuda":
        return torch.device("cpu")
    return device


def _factory(fn):
    def call(*args, **kwargs):
        if "device" in kwargs:
            kwargs["device"] = _cpu_device(kwargs["device"])
        return fn(*args, **kwargs)

    return call


class _CpuCuda(types.SimpleNamespace):
    """The parts of torch.cuda Megatron calls, answered for the CPU."""


def _cpu_cuda() -> _CpuCuda:
    rng = _CpuCuda(get_rng_state=lambda device=None: torch.get_rng_state(), set_rng_state=lambda s, device=None: torch.set_rng_state(s))
    return _CpuCuda(
        is_available=lambda: False,
        current_device=lambda: "cpu",
        device_count=lambda: 0,
        synchronize=lambda *a, **k: None,
        empty_cache=lambda: None,
        manual_seed=torch.manual_seed,
        manual_seed_all=torch.manual_seed,
        get_rng_state=lambda device=None: torch.get_rng_state(),
        set_rng_state=lambda s, device=None: torch.set_rng_state(s),
        random=rng,
        default_generators=[torch.default_generator],
        current_stream=lambda *a, **k: _NullStream(),
        Stream=lambda *a, **k: _NullStream(),
        stream=lambda s: contextlib.nullcontext(),
        nvtx=_CpuCuda(range_push=lambda *a, **k: None, range_pop=lambda *a, **k: None),
        Event=lambda *a, **k: _NullStream(),
        is_current_stream_capturing=lambda: False,
        memory_allocated=lambda *a, **k: 0,
        max_memory_allocated=lambda *a, **k: 0,
        FloatTensor=torch.FloatTensor,
    )


class _NullStream:
    def wait_stream(self, *_):
        pass

    def synchronize(self):
        pass

    def record(self, *_):
        pass

    def record_stream(self, *_):
        pass


class _CpuTorch(types.ModuleType):
    """`torch` as the patched modules see it."""

    def __init__(self):
        super().__init__("torch")
        self.cuda = _cpu_cuda()
        for name in _FACTORIES:
            setattr(self, name, _factory(getattr(torch, name)))

    def __getattr__(self, name):
        return getattr(torch, name)


def clip_grad_by_total_norm_fp32(parameters, max_norm, total_norm, use_decoupled_grad=False):
    """Megatron's arithmetic (scale by max_norm / (norm + 1e-6) when below 1) without its
    assertion that gradients are torch.cuda.FloatTensor."""
    params = [parameters] if isinstance(parameters, torch.Tensor) else parameters
    grads = [getattr(p, "decoupled_grad", None) if use_decoupled_grad else p.grad for p in params]
    grads = [g.detach() for g in grads if g is not None]
    clip_coeff = max_norm / (total_norm + 1.0e-6)
    if isinstance(clip_coeff, torch.Tensor):
        torch._foreach_mul_(grads, clip_coeff.clamp_max(1.0))
    elif clip_coeff < 1.0:
        torch._foreach_mul_(grads, clip_coeff)


_applied = False


def apply() -> bool:
    """Patches Megatron-Core for CPU if CUDA is absent; returns whether it did."""
    global _applied
    if torch.cuda.is_available():
        return False
    if _applied:
        return True
    shim = _CpuTorch()
    for name in PATCHED_MODULES:
        importlib.import_module(name).torch = shim
    importlib.import_module("megatron.core.optimizer.optimizer").clip_grad_by_total_norm_fp32 = clip_grad_by_total_norm_fp32
    _applied = True
    return True
