import json
import os
import socket
import subprocess
import sys

import pytest

from tests.conftest import ROOT

torch = pytest.importorskip("torch")
pytest.importorskip("megatron.core")
from training import cpu_compat  # noqa: E402


def test_applies_only_without_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert cpu_compat.apply() is False


CHILD = """
import sys

if __name__ == "__main__":
    from training import cpu_compat

    if sys.argv[2] != "-":
        cpu_compat.PATCHED_MODULES.remove(sys.argv[2])
    sys.argv = ["train", "--job", sys.argv[1], "--stop-after", "2"]
    from training.train import main

    main()
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(torch.cuda.is_available(), reason="the shim is for machines without CUDA")
@pytest.mark.parametrize("left_out", ["-", *cpu_compat.PATCHED_MODULES])
def test_every_patched_module_is_needed_for_the_cpu_loop(tmp_path, built, sample_inputs, left_out):
    """The real training loop (two steps and the step-0 checkpoint, as `training.train`
    runs them) works on CPU with the shim, and fails on CUDA with any one module left
    unpatched: each patch is the CPU path of something the loop runs."""
    from tests.train.test_training import train_config
    from xcult.config import load_config
    from xcult.train import launch

    cfg = load_config(train_config(tmp_path, sample_inputs, built, "compat"))
    job = launch.job(cfg, launch.find_run(cfg, "pretrain", None, None))
    job["out"] = str(tmp_path / "out")
    (tmp_path / "job.json").write_text(json.dumps(job))
    (tmp_path / "child.py").write_text(CHILD)
    env = dict(os.environ, RANK="0", WORLD_SIZE="1", LOCAL_RANK="0", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(_free_port()))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    r = subprocess.run([sys.executable, str(tmp_path / "child.py"), str(tmp_path / "job.json"), left_out], capture_output=True, text=True, env=env)
    if left_out == "-":
        assert r.returncode == 0, r.stderr[-3000:]
        assert len((tmp_path / "out" / "metrics.jsonl").read_text().splitlines()) == 2
    else:
        # a CUDA build of torch without a GPU, or a CPU-only build: either way CUDA was reached
        assert r.returncode != 0 and ("NVIDIA driver" in r.stderr or "not compiled with CUDA" in r.stderr), r.stderr[-2000:]


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
