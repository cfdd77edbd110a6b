"""One unit as many tasks (`prep.english.tasks`): each task reads a byte range of the
inputs into a pool, a merge writes the unit. Property kept: the merged unit is the
single-task unit, byte for byte (.bin/.idx, provenance, chunks) — so the same documents
in the same order, the same token count — whatever the number of tasks, the budget cut
or the mix of splittable and whole files. What differs, by definition: the input
counters sum what every task read, and with a budget the tasks after the cut read their
ranges too, so records read (and skips logged) can exceed one reader's."""

from __future__ import annotations

import gzip
import json
import shutil

import numpy as np
import pytest

from tests.conftest import write_config
from xcult.config import load_config
from xcult.corpus import executors
from xcult.corpus.prep import build_shard, shard_statuses
from xcult.corpus.stage import run_prep


def _unit_files(run) -> dict[str, bytes]:
    en = run / "prep" / "en"
    return {p.name: p.read_bytes() for p in sorted(en.iterdir()) if p.suffix in (".bin", ".idx", ".parquet")}


def _config(tmp_path, inputs, name, tasks, budget=None, paths=None):
    path = write_config(tmp_path / f"{name}.toml", inputs, tmp_path / name, langs=())
    text = path.read_text()
    english = "min_chars = 20\n" + f"tasks = {tasks}\n" + (f"budget_tokens = {budget}\n" if budget else "")
    text = text.replace("min_chars = 20\n", english, 1)
    if paths is not None:
        text = text.replace(f'paths = ["{inputs / "en.jsonl"}"]', "paths = " + json.dumps([str(p) for p in paths]))
    path.write_text(text)
    return load_config(path)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, sample_inputs):
    """en.jsonl split into three files: plain, gzip (read whole by one task), plain, with
    blank and malformed lines that the skip counts must keep."""
    d = tmp_path_factory.mktemp("shard_inputs")
    lines = (sample_inputs / "en.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    lines.insert(100, "\n")
    lines.insert(1000, "{not json\n")  # c.jsonl line 201
    (d / "a.jsonl").write_text("".join(lines[:500]), encoding="utf-8")
    with gzip.open(d / "b.jsonl.gz", "wt", encoding="utf-8") as f:
        f.write("".join(lines[500:800]))
    (d / "c.jsonl").write_text("".join(lines[800:]), encoding="utf-8")
    shutil.copy(sample_inputs / "en.jsonl", d / "en.jsonl")
    return d


def _build(tmp_path, inputs, name, tasks, budget=None, files=("a.jsonl", "b.jsonl.gz", "c.jsonl")):
    cfg = _config(tmp_path, inputs, name, tasks, budget, [inputs / f for f in files])
    stats = run_prep(cfg, progress=False)
    return cfg, stats["en"]


@pytest.mark.parametrize("tasks", [2, 4, 7])
@pytest.mark.parametrize("budget", [None, 120_000])
def test_a_unit_of_n_tasks_is_the_unit_of_one(tmp_path, inputs, tasks, budget):
    one_cfg, one = _build(tmp_path, inputs, "one", 1, budget)
    many_cfg, many = _build(tmp_path, inputs, "many", tasks, budget)
    assert _unit_files(tmp_path / "many") == _unit_files(tmp_path / "one")
    assert many["tasks"] == tasks and one["tasks"] == 1
    (o1,), (o2,) = one["outputs"], many["outputs"]
    assert (o1["documents"], o1["tokens"]) == (o2["documents"], o2["tokens"])
    a, b = one["inputs"]["documents"], many["inputs"]["documents"]
    assert a["documents_kept"] == b["documents_kept"] == o1["documents"]
    skipped = [(tmp_path / n / "prep" / "en" / "skipped.jsonl") for n in ("one", "many")]
    if budget is None:  # every record read once either way: the same counts, the same skip log
        assert {k: a[k] for k in ("records_read", "blank_lines", "skipped")} == {k: b[k] for k in ("records_read", "blank_lines", "skipped")}
        assert a["skipped"] == {"malformed_json": 1}
        assert skipped[0].read_text() == skipped[1].read_text() and "c.jsonl:201:" in skipped[0].read_text()  # its line in the whole file
    else:  # the cut falls where one reader stops; tasks after it read their whole range (the counts say so)
        assert a["stopped_at_budget"] and b["stopped_at_budget"] and b["records_read"] >= a["records_read"]
        assert a["skipped"] == {} and b["skipped"] == {"malformed_json": 1} and "c.jsonl:201:" in skipped[1].read_text()
        assert budget <= o1["tokens"] < budget + 2000
    assert not (tmp_path / "many" / "prep" / ".en.shards").exists()  # merged: the pools are gone


def test_megatron_reads_the_merged_unit(tmp_path, inputs):
    indexed_dataset = pytest.importorskip("megatron.core.datasets.indexed_dataset")
    cfg, stats = _build(tmp_path, inputs, "m", 3)
    ds = indexed_dataset.IndexedDataset(str(tmp_path / "m" / "prep" / "en" / "en"))
    assert len(ds) == stats["outputs"][0]["documents"]
    assert int(np.sum(ds.sequence_lengths)) == stats["outputs"][0]["tokens"]


def test_a_killed_build_keeps_the_finished_tasks(tmp_path, inputs):
    cfg = _config(tmp_path, inputs, "k", 4, paths=[inputs / "en.jsonl"])
    for k in (0, 2):  # two tasks finished before the kill
        build_shard(cfg, "en", k, 4, progress=False)
    first, merges = executors._rounds(cfg, ["en"], force=False)
    assert first == ["en@1/4", "en@3/4"] and merges == ["en"]
    run_prep(cfg, progress=False)
    one = _config(tmp_path, inputs, "k1", 1, paths=[inputs / "en.jsonl"])
    run_prep(one, progress=False)
    assert _unit_files(tmp_path / "k") == _unit_files(tmp_path / "k1")


def test_a_changed_input_makes_the_finished_tasks_stale(tmp_path, inputs):
    src = tmp_path / "en.jsonl"
    shutil.copy(inputs / "en.jsonl", src)
    cfg = _config(tmp_path, inputs, "s", 2, paths=[src])
    build_shard(cfg, "en", 0, 2, progress=False)
    assert [st.state for st in shard_statuses(cfg, "en", 2)] == ["current", "missing"]
    with open(src, "a", encoding="utf-8") as f:
        f.write(json.dumps({"text": "A new English document, long enough for the filter."}) + "\n")
    st = shard_statuses(cfg, "en", 2)[0]
    assert st.state == "stale" and "en.jsonl changed" in st.reason
