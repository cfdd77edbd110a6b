import importlib
import inspect

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("megatron.core")
from training import cpu_compat  # noqa: E402


def test_applies_only_without_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert cpu_compat.apply() is False


@pytest.mark.skipif(torch.cuda.is_available(), reason="the shim is for machines without CUDA")
def test_patched_modules_see_a_cpu_cuda():
    assert cpu_compat.apply() is True
    for name in cpu_compat.PATCHED_MODULES:
        mod = importlib.import_module(name)
        assert "cuda" in inspect.getsource(mod), f"{name} has no CUDA assumption to patch"
        assert mod.torch.cuda.current_device() == "cpu"
        assert mod.torch.zeros(2, device="cuda").device.type == "cpu"
        assert mod.torch.tensor([1.0], device=torch.device("cuda", 0)).device.type == "cpu"
        assert mod.torch.float32 is torch.float32  # everything else is torch itself
    # torch itself is untouched
    assert torch.cuda.is_available() is False and torch.zeros is not importlib.import_module(cpu_compat.PATCHED_MODULES[0]).torch.zeros


def test_clip_matches_megatron_arithmetic():
    params = [torch.nn.Parameter(torch.zeros(3)), torch.nn.Parameter(torch.zeros(4))]
    params[0].grad = torch.tensor([3.0, 0.0, 0.0])
    params[1].grad = torch.tensor([0.0, 4.0, 0.0, 0.0])
    cpu_compat.clip_grad_by_total_norm_fp32(params, max_norm=1.0, total_norm=5.0)
    coeff = 1.0 / (5.0 + 1e-6)
    assert torch.allclose(params[0].grad, torch.tensor([3.0, 0, 0]) * coeff)
    assert torch.allclose(params[1].grad, torch.tensor([0, 4.0, 0, 0]) * coeff)
    cpu_compat.clip_grad_by_total_norm_fp32(params, max_norm=10.0, total_norm=1.0)  # below the limit: untouched
    assert torch.allclose(params[0].grad, torch.tensor([3.0, 0, 0]) * coeff)
