"""Process setup shared by training runs and offline tools (export, evaluation)."""

from __future__ import annotations

import os
import socket
from datetime import timedelta

import torch

from training import cpu_compat


def init_distributed(threads: int = 0) -> tuple[int, int, torch.device]:
    """torch.distributed from torchrun's environment (NCCL on GPU, gloo on CPU) and
    Megatron's model-parallel state (data parallel only). Returns rank, world, device."""
    from megatron.core import parallel_state

    cuda = torch.cuda.is_available()
    cpu_compat.apply()
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    if cuda:
        torch.cuda.set_device(local_rank)
    elif threads > 0:
        torch.set_num_threads(threads)
    if not torch.distributed.is_initialized():
        torch.distributed.init_process_group("nccl" if cuda else "gloo", timeout=timedelta(minutes=30))
    if not parallel_state.model_parallel_is_initialized():
        parallel_state.initialize_model_parallel(1, 1)
    device = torch.device("cuda", local_rank) if cuda else torch.device("cpu")
    return torch.distributed.get_rank(), torch.distributed.get_world_size(), device


def init_single_process() -> torch.device:
    """A one-process group for tools that load checkpoints outside torchrun."""
    if not torch.distributed.is_initialized():
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
        os.environ.setdefault("MASTER_PORT", str(port))
        os.environ.setdefault("RANK", "0")
        os.environ.setdefault("WORLD_SIZE", "1")
    device = init_distributed()[2]
    from megatron.core.tensor_parallel.random import model_parallel_cuda_manual_seed

    model_parallel_cuda_manual_seed(0)  # Megatron's attention forks this RNG even without dropout
    return device


def unwrap(model):
    """The GPTModel inside DDP / Float16Module wrappers (checkpoint keys are its own)."""
    while hasattr(model, "module"):
        model = model.module
    return model
