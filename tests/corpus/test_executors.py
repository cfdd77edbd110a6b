"""datatrove's cluster executors, run for real: a single-node Slurm (`.ci/slurm_up.sh`
starts Debian's slurm-wlm + munge) and a local Ray cluster. Each builds the same units
as the local executor, byte for byte.

Without sbatch/ray on this machine the Slurm/Ray tests skip, unless XCULT_REQUIRE_SLURM /
XCULT_REQUIRE_RAY is set (as `.ci/run` does), when a missing one fails."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, write_config
from xcult.config import load_config, slurm_minutes
from xcult.corpus.executors import Submitted, check_slurm, slurm_state
from xcult.corpus.stage import run_prep
from xcult.errors import ConfigError, ExecutorError


def _files(run: Path) -> dict[str, bytes]:
    prep = run / "prep"
    return {str(p.relative_to(prep)): p.read_bytes() for p in sorted(prep.rglob("*")) if p.is_file() and p.suffix in (".bin", ".idx", ".jsonl")}


@pytest.fixture(scope="module")
def local_build(tmp_path_factory, sample_inputs):
    d = tmp_path_factory.mktemp("local")
    cfg = load_config(write_config(d / "c.toml", sample_inputs, d / "run"))
    run_prep(cfg, progress=False)
    return _files(d / "run")


@pytest.mark.parametrize(
    "value,minutes",
    [("30", 30), ("30:30", 30.5), ("4:00:00", 240), ("1-12", 2160), ("1-12:30", 2190), ("2-00:00:30", 2880.5), ("UNLIMITED", float("inf")), ("4h", None), ("1:2:3:4", None)],
)
def test_slurm_time_formats(value, minutes):
    assert slurm_minutes(value) == minutes


@pytest.mark.parametrize(
    "extra,key",
    [
        ('executor = "slurm"', "prep.slurm_partition"),
        ('executor = "slurm"\nslurm_partition = "debug"\nslurm_time = "4 hours"', "prep.slurm_time"),
        ("cpus_per_task = 0", "prep.cpus_per_task"),
    ],
)
def test_cluster_settings_are_validated_before_anything_runs(tmp_path, sample_inputs, extra, key):
    with pytest.raises(ConfigError) as e:
        load_config(write_config(tmp_path / "c.toml", sample_inputs, tmp_path / "run", extra=extra))
    assert e.value.key == key


def test_executor_override_is_validated_too(tmp_path, sample_inputs):
    cfg = load_config(write_config(tmp_path / "c.toml", sample_inputs, tmp_path / "run"))
    with pytest.raises(ConfigError, match="slurm_partition"):
        run_prep(cfg, executor="slurm", progress=False)


# -- Slurm ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def slurm():
    """The cluster's one partition, after `.ci/slurm_up.sh` brought it up."""
    if shutil.which("sbatch") is None:
        if os.environ.get("XCULT_REQUIRE_SLURM"):
            pytest.fail("XCULT_REQUIRE_SLURM is set but sbatch is not installed")
        pytest.skip("no Slurm here (.ci/run installs slurm-wlm and starts it)")
    up = subprocess.run(["bash", str(ROOT / ".ci" / "slurm_up.sh")], capture_output=True, text=True)
    assert up.returncode == 0, up.stderr
    return subprocess.run(["sinfo", "-h", "-o", "%P"], capture_output=True, text=True, check=True).stdout.split()[0].rstrip("*")


def _slurm_config(tmp_path, sample_inputs, partition, extra=""):
    settings = f'executor = "slurm"\nslurm_partition = "{partition}"\nslurm_time = "10:00"\ncpus_per_task = 1\nmem_per_cpu_gb = 1\n{extra}'
    return write_config(tmp_path / "c.toml", sample_inputs, tmp_path / "run", extra=settings)


def _wait(job_id: str, limit_s: float = 240) -> None:
    t0 = time.monotonic()
    while slurm_state(job_id) is not None:
        assert time.monotonic() - t0 < limit_s, f"Slurm job {job_id} still {slurm_state(job_id)} after {limit_s} s"
        time.sleep(1)


def test_slurm_submits_returns_at_once_and_a_rerun_takes_the_units(tmp_path, sample_inputs, slurm, local_build):
    path = _slurm_config(tmp_path, sample_inputs, slurm)
    cfg = load_config(path)
    first = run_prep(cfg, progress=False)
    assert isinstance(first, Submitted) and first.state == "submitted" and first.job_id.isdigit()
    assert first.units == ["en", "zh", "bo"]
    assert f"squeue -j {first.job_id}" in first.message(str(path))
    script = (tmp_path / "run" / "prep" / "datatrove" / "launch_script.slurm").read_text()
    assert f"#SBATCH --partition={slurm}" in script and "#SBATCH --cpus-per-task=1" in script and "#SBATCH --time=10:00" in script
    assert "--qos" not in script
    # While the job runs, a rerun reports it rather than building or resubmitting.
    again = run_prep(cfg, progress=False)
    if isinstance(again, Submitted):
        assert again.job_id == first.job_id and again.state != "submitted"
    _wait(first.job_id)
    stats = run_prep(cfg, progress=False)
    assert set(stats) == {"en", "zh", "bo"}
    assert (tmp_path / "run" / "prep" / "manifest.json").is_file()
    assert not (tmp_path / "run" / "prep" / "submitted.json").exists()
    assert _files(tmp_path / "run") == local_build  # the same bytes as the local executor


def test_slurm_builds_a_unit_as_many_tasks_then_merges_it(tmp_path, sample_inputs, slurm, local_build):
    path = _slurm_config(tmp_path, sample_inputs, slurm)
    path.write_text(path.read_text().replace("min_chars = 20\n", "min_chars = 20\ntasks = 3\n", 1))
    cfg = load_config(path)
    sub = run_prep(cfg, progress=False)
    assert isinstance(sub, Submitted) and len(sub.job_ids) == 2  # the tasks, then the merges after them
    merge_script = (tmp_path / "run" / "prep" / "datatrove" / "merge" / "launch_script.slurm").read_text()
    assert "#SBATCH --array=0-0" in merge_script
    build_script = (tmp_path / "run" / "prep" / "datatrove" / "launch_script.slurm").read_text()
    assert "#SBATCH --array=0-4" in build_script  # en in 3 tasks, zh, bo
    _wait(sub.job_id)
    stats = run_prep(cfg, progress=False)
    assert stats["en"]["tasks"] == 3
    assert _files(tmp_path / "run") == local_build


def test_slurm_job_that_fails_is_reported_with_its_logs(tmp_path, sample_inputs, slurm):
    inputs = tmp_path / "inputs"
    shutil.copytree(sample_inputs, inputs)
    with open(inputs / "en.jsonl", "a", encoding="utf-8") as f:
        f.write("{not json\n")  # the task's build stops here (on_error = "error")
    path = _slurm_config(tmp_path, inputs, slurm, extra='on_error = "error"')
    path.write_text(path.read_text().replace('on_error = "skip"\n', ""))
    cfg = load_config(path)
    first = run_prep(cfg, progress=False)
    assert isinstance(first, Submitted)
    _wait(first.job_id)
    with pytest.raises(ExecutorError, match=rf"Slurm job {first.job_id} has ended without building en; its logs: .*slurm_logs/{first.job_id}_\*\.out"):
        run_prep(cfg, progress=False)
    logs = "".join(p.read_text() for p in (tmp_path / "run" / "prep" / "datatrove" / "slurm_logs").glob(f"{first.job_id}_*.out"))
    assert f"{inputs / 'en.jsonl'}:" in logs  # the task's error names the file and line
    assert (tmp_path / "run" / "prep" / "zh" / "stats.json").is_file()  # the other tasks' units are kept
    # The record is gone: the next run resubmits only what is missing.
    again = run_prep(cfg, progress=False)
    assert isinstance(again, Submitted) and again.units == ["en"]
    _wait(again.job_id)


@pytest.mark.parametrize(
    "extra,key",
    [
        ('slurm_partition = "nope"', "prep.slurm_partition"),
        ("cpus_per_task = 4096", "prep.cpus_per_task"),
        ("mem_per_cpu_gb = 100000", "prep.mem_per_cpu_gb"),
    ],
)
def test_slurm_settings_are_checked_against_the_cluster(tmp_path, sample_inputs, slurm, extra, key):
    path = _slurm_config(tmp_path, sample_inputs, slurm)
    text = path.read_text()
    for line in extra.splitlines():
        name = line.split(" = ")[0]
        text = "\n".join(line if l.startswith(f"{name} = ") else l for l in text.splitlines())
    path.write_text(text)
    with pytest.raises(ConfigError) as e:
        check_slurm(load_config(path))
    assert e.value.key == key
    assert not (tmp_path / "run" / "prep" / "submitted.json").exists()


# -- Ray ------------------------------------------------------------------------------


def test_ray_builds_the_units_of_the_local_executor(tmp_path, sample_inputs, local_build):
    try:
        import ray  # noqa: F401
    except ImportError:
        if os.environ.get("XCULT_REQUIRE_RAY"):
            raise
        pytest.skip("ray is not installed (pip install 'xcult[scale]')")
    settings = 'executor = "ray"\ncpus_per_task = 1\nmem_per_cpu_gb = 1'
    path = write_config(tmp_path / "c.toml", sample_inputs, tmp_path / "run", extra=settings)
    path.write_text(path.read_text().replace("min_chars = 20\n", "min_chars = 20\ntasks = 2\n", 1))  # two rounds on Ray
    stats = run_prep(load_config(path), progress=False)
    assert set(stats) == {"en", "zh", "bo"} and stats["en"]["tasks"] == 2
    assert _files(tmp_path / "run") == local_build
    for logs in ("datatrove", "datatrove/merge"):  # datatrove's own record of each round
        assert "xcult prep" in (tmp_path / "run" / "prep" / logs / "stats.json").read_text()
