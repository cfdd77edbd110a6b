"""Remote corpus inputs through datatrove's readers: an fsspec URL (the in-memory
filesystem, so no network is needed) and a Hugging Face dataset (`datasets` on a
dataset directory) build the same unit, byte for byte, as the same documents read
from a local file."""

from __future__ import annotations

import json
from pathlib import Path

import fsspec
import polars as pl
import pytest

import datasets  # noqa: F401  (a needed dependency: failing to import is a failure)
from xcult import layout
from xcult.config import load_config
from xcult.corpus.stage import run_prep
from xcult.errors import ConfigError

DOCS = [f"Document {i} tells of the river, the mountain and the long winter number {i * 7}." for i in range(40)]


def english(tmp: Path, name: str, paths: list[str], fmt: str = "jsonl") -> object:
    path = tmp / f"{name}.toml"
    path.write_text(
        f'[experiment]\nname = "{name}"\nout_dir = "{tmp / name}"\n\n[prep.english]\npaths = {json.dumps(paths)}\nformat = "{fmt}"\n',
        encoding="utf-8",
    )
    return load_config(path)


def unit_bytes(cfg) -> bytes:
    (bin_file,) = (layout.of(cfg).prep / "en").glob("*.bin")
    return bin_file.read_bytes()


@pytest.fixture
def local(tmp_path):
    src = tmp_path / "en.jsonl"
    src.write_text("".join(json.dumps({"text": d}) + "\n" for d in DOCS), encoding="utf-8")
    cfg = english(tmp_path, "local", [str(src)])
    run_prep(cfg, progress=False)
    return unit_bytes(cfg)


def test_an_fsspec_url_builds_the_unit_a_local_file_builds(tmp_path, local):
    fs = fsspec.filesystem("memory")
    with fs.open("/xcult-test/part-0.jsonl", "w") as f:
        f.write("".join(json.dumps({"body": d}) + "\n" for d in DOCS[:25]))
    with fs.open("/xcult-test/part-1.jsonl", "w") as f:
        f.write("".join(json.dumps({"body": d}) + "\n" for d in DOCS[25:]))
    path = tmp_path / "remote.toml"
    path.write_text(
        f'[experiment]\nname = "remote"\nout_dir = "{tmp_path / "remote"}"\n\n'
        '[prep.english]\npaths = ["memory://xcult-test/*.jsonl"]\ntext_field = "body"\n',
        encoding="utf-8",
    )
    cfg = load_config(path)
    stats = run_prep(cfg, progress=False)
    assert stats["en"]["inputs"]["documents"]["documents_kept"] == len(DOCS)
    assert unit_bytes(cfg) == local
    copy = layout.of(cfg).prep_input("memory://xcult-test/*.jsonl")
    assert (copy / "completion.json").is_file()
    stamp = sorted(p.stat().st_mtime_ns for p in copy.glob("*.jsonl.gz"))
    run_prep(cfg, progress=False)  # current: neither fetched nor built again
    assert sorted(p.stat().st_mtime_ns for p in copy.glob("*.jsonl.gz")) == stamp


def test_a_hugging_face_dataset_builds_the_same_unit(tmp_path, local, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf-cache"))
    repo = tmp_path / "org" / "wiki"
    (repo / "data").mkdir(parents=True)
    pl.DataFrame({"id": [str(i) for i in range(len(DOCS))], "text": DOCS}).write_parquet(repo / "data" / "train-00000-of-00001.parquet")
    cfg = english(tmp_path, "hf", [f"hf://datasets/{repo}"], fmt="parquet")
    run_prep(cfg, progress=False)
    assert unit_bytes(cfg) == local


@pytest.mark.parametrize(
    "paths,fmt,msg",
    [(["memory://x/*.jsonl", "/local/en.jsonl"], "jsonl", "mixes remote and local"), (["memory://x/a.txt"], "text", "JSONL or Parquet")],
)
def test_remote_inputs_that_cannot_be_read_are_config_errors(tmp_path, paths, fmt, msg):
    with pytest.raises(ConfigError) as e:
        english(tmp_path, "bad", paths, fmt)
    assert e.value.key == "prep.english.paths" and msg in str(e.value)
