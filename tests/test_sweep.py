"""`xcult sweep`: one config per grid point x seed, each an ordinary `xcult run` in its own
directory; a second sweep resumes (finished runs do no work); bad overrides are named."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from xcult.cli import main
from xcult.errors import ConfigError
from xcult.sweep import parse_value, plan

BASE = """
[experiment]
name = "sw"
out_dir = "{out}"
seed = 1

[synth]
tiers = { low = { communities = 2, frequent_in = "native" } }
attributes = ["food", "festival"]
frequencies = [1, 2]
bridge_communities = 2
filler_documents_en = 10
filler_documents_native = 10
parallel_pairs = 20
heldout_pairs = 4
"""


def test_plan_applies_overrides_grid_and_seeds(tmp_path):
    base = tmp_path / "base.toml"
    base.write_text(BASE.replace("{out}", str(tmp_path / "unused")))
    runs = plan(base, ["synth.templates=2"], ['synth.word_order="svo";"sov"'], [5, 6], tmp_path / "sweep")
    assert [r.label for r in runs] == ["word_order=svo_seed=5", "word_order=svo_seed=6", "word_order=sov_seed=5", "word_order=sov_seed=6"]
    import tomllib

    cfg = tomllib.loads(runs[2].config.read_text())
    assert cfg["synth"]["word_order"] == "sov" and cfg["synth"]["templates"] == 2 and cfg["experiment"]["seed"] == 5
    assert cfg["experiment"]["out_dir"] == str(tmp_path / "sweep" / "word_order=sov_seed=5")
    assert parse_value("[1, 2]") == [1, 2] and parse_value("sov") == "sov" and parse_value("0.3") == 0.3
    with pytest.raises(ConfigError) as e:
        plan(base, ["synth.word_order=xyz"], [], [1], tmp_path / "bad")
    assert e.value.key == "synth.word_order"
    with pytest.raises(ConfigError):
        plan(base, ["no equals sign"], [], [1], tmp_path / "bad")


def test_sweep_runs_each_world_and_resumes(tmp_path):
    base = tmp_path / "base.toml"
    base.write_text(BASE.replace("{out}", str(tmp_path / "unused")))
    out = tmp_path / "sweep"
    args = ["sweep", str(base), "--grid", "synth.templates=1;3", "--seeds", "1,2", "--out", str(out), "--jobs", "2"]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0, r.output
    dirs = sorted(p.name for p in out.iterdir())
    assert dirs == ["templates=1_seed=1", "templates=1_seed=2", "templates=3_seed=1", "templates=3_seed=2"]
    worlds = {d: (out / d / "synth" / "bo_mono.jsonl").read_text() for d in dirs}
    assert len(set(worlds.values())) == 4  # seeds and templates each change the world
    stamp = {d: (out / d / "synth" / "stats.json").stat().st_mtime_ns for d in dirs}
    r = CliRunner().invoke(main, args)  # resumes: every run finds its world complete
    assert r.exit_code == 0, r.output
    assert {d: (out / d / "synth" / "stats.json").stat().st_mtime_ns for d in dirs} == stamp
    assert all("current" in (out / d / "run.log").read_text() for d in dirs)
    assert json.loads((out / dirs[0] / "synth" / "config.json").read_text())["experiment"]["seed"] == 1
