"""Completion that knows what it was built from: a rerun of `xcult prep` reuses a unit
only when its job and input files are unchanged, and rebuilds (saying why) otherwise.
Each case here kept stale output before completion records existed."""

from __future__ import annotations

import json
import shutil

import pytest

from tests.conftest import write_config
from xcult.config import load_config
from xcult.corpus.prep import unit_status
from xcult.corpus.stage import run_prep


@pytest.fixture()
def fresh(tmp_path, sample_inputs):
    inputs = tmp_path / "inputs"
    shutil.copytree(sample_inputs, inputs)
    path = write_config(tmp_path / "c.toml", inputs, tmp_path / "run", langs=("zh",))
    cfg = load_config(path)
    run_prep(cfg, progress=False)
    return cfg, inputs, path


def _stats(cfg, unit):
    return json.loads((cfg.out_dir / "prep" / unit / "stats.json").read_text())


def test_unchanged_rerun_is_current_and_does_no_work(fresh):
    cfg, _, _ = fresh
    before = (cfg.out_dir / "prep" / "en" / "en.bin").stat().st_mtime_ns
    assert unit_status(cfg, "en").state == "current" and unit_status(cfg, "zh").state == "current"
    run_prep(cfg, progress=False)
    assert (cfg.out_dir / "prep" / "en" / "en.bin").stat().st_mtime_ns == before


def test_appended_input_rebuilds_with_the_reason(fresh, capfd):
    cfg, inputs, _ = fresh
    docs_before = _stats(cfg, "en")["outputs"][0]["documents"]
    with open(inputs / "en.jsonl", "a", encoding="utf-8") as f:
        f.write(json.dumps({"text": "An appended English document that is long enough to be kept by the filter."}) + "\n")
    st = unit_status(cfg, "en")
    assert st.state == "stale" and "en.jsonl changed (sha256" in st.reason
    assert unit_status(cfg, "zh").state == "current"  # only the affected unit
    run_prep(cfg, progress=False)
    assert _stats(cfg, "en")["outputs"][0]["documents"] == docs_before + 1
    assert "en.jsonl changed" in _stats(cfg, "en")["rebuilt"]
    assert "prep en:" in capfd.readouterr().err
    manifest = json.loads((cfg.out_dir / "prep" / "manifest.json").read_text())
    from xcult import _core

    assert manifest["inputs"][str(inputs / "en.jsonl")] == _core.hash_files([str(inputs / "en.jsonl")])[0]
    assert unit_status(cfg, "en").state == "current"


def test_touched_but_identical_input_is_still_current(fresh):
    cfg, inputs, _ = fresh
    p = inputs / "en.jsonl"
    p.write_bytes(p.read_bytes())  # new mtime, same content: rehashed, not rebuilt
    assert unit_status(cfg, "en").state == "current"


@pytest.mark.parametrize(
    "old,new,unit,what",
    [
        ("seed = 1234", "seed = 99", "en", "engine.seed"),
        ("[prep.languages.zh]", '[prep.languages.zh]\ntemplate = "EN: {en} ZH: {xx}"', "zh", "template"),
        ("[prep]", "[prep]\nchunk_chars = 300", "en", "engine.chunk_chars"),
    ],
)
def test_changed_setting_makes_the_unit_stale(fresh, old, new, unit, what):
    cfg, _, path = fresh
    path.write_text(path.read_text().replace(old, new, 1))
    changed = load_config(path)
    st = unit_status(changed, unit)
    assert st.state == "stale" and st.reason.startswith(f"setting {what}")
    run_prep(changed, progress=False)
    assert unit_status(changed, unit).state == "current"
    assert json.loads((changed.out_dir / "prep" / unit / "job.json").read_text())["engine"]["seed"] == changed.experiment.seed


def test_resource_settings_keep_the_units_current(fresh):
    """Threads, batch size and pool memory change how a unit is built, not its bytes."""
    cfg, _, path = fresh
    before = (cfg.out_dir / "prep" / "en" / "en.bin").stat().st_mtime_ns
    path.write_text(path.read_text().replace("[prep]", "[prep]\nthreads = 1\nbatch_mb = 1\npool_memory_mb = 0", 1))
    changed = load_config(path)
    assert (changed.prep.threads, changed.prep.batch_mb, changed.prep.pool_memory_mb) == (1, 1, 0)
    assert unit_status(changed, "en").state == "current" and unit_status(changed, "zh").state == "current"
    run_prep(changed, progress=False)
    assert (cfg.out_dir / "prep" / "en" / "en.bin").stat().st_mtime_ns == before


def test_changed_tokenizer_file_makes_every_unit_stale(fresh, qwen_tokenizer_json, tmp_path):
    cfg, _, path = fresh
    tok = tmp_path / "tok.json"
    shutil.copy(qwen_tokenizer_json, tok)
    path.write_text(path.read_text().replace("[prep]", f'[tokenizer]\nname = "{tok}"\n\n[prep]', 1))
    cfg = load_config(path)
    run_prep(cfg, progress=False)
    assert unit_status(cfg, "en").state == "current"
    data = json.loads(tok.read_text())
    data["added_tokens"][-1]["content"] = "<|changed|>"
    tok.write_text(json.dumps(data))
    assert all(unit_status(cfg, u).state == "stale" and "tok.json changed" in unit_status(cfg, u).reason for u in ("en", "zh"))


def test_output_without_a_record_is_stale(fresh):
    cfg, _, _ = fresh
    (cfg.out_dir / "prep" / "en" / "completion.json").unlink()
    assert unit_status(cfg, "en").reason.startswith("no completion record")
