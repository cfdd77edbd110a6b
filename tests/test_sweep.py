"""`xcult sweep`: one config per grid point x seed, each an ordinary `xcult run` in its own
directory; a second sweep resumes (finished runs do no work); bad overrides are named."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner

from xcult import layout
from xcult.cli import main
from xcult.config import load_config
from xcult.errors import ConfigError
from xcult.sweep import parse_value, plan, pool_seeds

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


def _predictions(rng, n: int, acc_with: float, acc_without: float) -> pl.DataFrame:
    """Predictions of one run: culture `low` (bo), English and native questions, steps 0
    and 10 in both settings and a step 20 only `with` reached (not a shared checkpoint)."""
    rows = []
    for setting, acc in (("with", acc_with), ("without", acc_without)):
        for step in (0, 10, 20) if setting == "with" else (0, 10):
            for lang in ("en", "bo"):
                for item in range(n):
                    p = acc if step == 10 else 0.0  # other steps all wrong
                    rows.append({"setting": setting, "step": step, "culture": "low", "lang": lang, "item": item, "correct": bool(rng.random() < p)})
    return pl.DataFrame(rows)


def test_pooled_gap_counts_every_seeds_items_at_the_final_shared_step(tmp_path):
    base = tmp_path / "base.toml"
    base.write_text(BASE.replace("{out}", str(tmp_path / "unused")))
    runs = plan(base, [], ['synth.templates=1;2'], [5, 6], tmp_path / "sweep")
    rng = np.random.default_rng(0)
    expected = {}
    for r, (aw, awo) in zip(runs, [(0.9, 0.2), (0.6, 0.5), (0.3, 0.3), (0.5, 0.5)]):
        pred = _predictions(rng, 40, aw, awo)
        path = layout.of(load_config(r.config)).eval_table("predictions")
        path.parent.mkdir(parents=True)
        pred.write_parquet(path)
        at10 = pred.filter(pl.col("step") == 10)
        point = expected.setdefault(r.overrides["synth.templates"], {"with": [], "without": []})
        for s in ("with", "without"):
            point[s] += at10.filter((pl.col("setting") == s) & (pl.col("lang") == "en"))["correct"].to_list()
    pooled = pool_seeds(runs, tmp_path / "sweep", n_boot=500)
    assert (tmp_path / "sweep" / "pooled.parquet").is_file()
    assert sorted(pooled["point"].unique()) == ["templates=1", "templates=2"]
    for templates, point in expected.items():
        row = pooled.filter((pl.col("point") == f"templates={templates}") & (pl.col("direction") == "bo->en")).row(0, named=True)
        assert row["seeds"] == "5,6" and row["n"] == 80
        assert row["acc_with"] == pytest.approx(np.mean(point["with"])) and row["acc_without"] == pytest.approx(np.mean(point["without"]))
        assert row["ci_low"] < row["gap"] < row["ci_high"]
    first = pooled.filter((pl.col("point") == "templates=1") & (pl.col("direction") == "bo->en")).row(0, named=True)
    assert first["ci_low"] > 0.1  # seeds 5 and 6 of templates=1 gain +0.7 and +0.1: pooled ~+0.4
