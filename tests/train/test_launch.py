import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT
from xcult.config import load_config
from xcult.errors import ConfigError
from xcult.train import launch


def test_paper_config_runs_and_commands():
    cfg = load_config(ROOT / "configs" / "paper.toml")
    assert [r.name for r in launch.runs(cfg)] == ["pretrain"] + [f"ct-{l}-{b}" for l in ("ko", "zh", "bo", "mn") for b in ("with", "without")]
    cmd = launch.torchrun_command(cfg, Path("job.json"))
    assert cmd[1:3] == ["-m", "torch.distributed.run"] and cmd[cmd.index("--nproc-per-node") + 1] == "8"
    assert cmd[-4:] == ["-m", "training.train", "--job", "job.json"] and "--standalone" in cmd
    # 0.5M tokens per step, ~5B tokens of pretraining
    t = cfg.train
    assert t.global_batch_size * t.seq_length == 2**19 and launch._steps(t.pretrain, 2**19) == 9537


def test_multi_node_rendezvous_from_slurm(monkeypatch):
    cfg = load_config(ROOT / "configs" / "paper.toml")
    import dataclasses

    cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, nnodes=4))
    with pytest.raises(ConfigError, match="rdzv_endpoint"):
        launch.torchrun_command(cfg, Path("job.json"))
    monkeypatch.setenv("SLURM_JOB_NODELIST", "gpu[01-04]")
    monkeypatch.setenv("SLURM_JOB_ID", "77")
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: subprocess.CompletedProcess(a, 0, stdout="gpu01\ngpu02\ngpu03\ngpu04\n"))
    cmd = launch.torchrun_command(cfg, Path("job.json"))
    assert cmd[cmd.index("--rdzv-endpoint") + 1] == "gpu01:29500" and cmd[cmd.index("--rdzv-id") + 1] == "77"
    assert cmd[cmd.index("--nnodes") + 1] == "4" and "--standalone" not in cmd
