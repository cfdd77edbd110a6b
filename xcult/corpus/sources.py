"""Corpus inputs that are not local files, read through datatrove's readers.

A path with a scheme is remote: `hf://datasets/ORG/NAME[@REVISION]` (no glob, no file
name) is a Hugging Face dataset id (its `train` split, streamed by
`HuggingFaceDatasetReader`), and any other URL an fsspec path or glob (`s3://bucket/wiki/*.parquet`, `hf://datasets/ORG/NAME/
data/*.parquet`, `https://...`) read by datatrove's JSONL or Parquet reader as the
unit's format says. `xcult prep` first runs a datatrove pipeline per remote path
(reader -> JsonlWriter) into `prep/inputs/<hash>/` (a completion record keyed by the
URL: a remote source is not re-hashed), and the Rust engine reads those local JSONL
files: it still owns tokenization, filtering and mixing.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from xcult import completion, layout
from xcult.config import RunConfig
from xcult.errors import InputError
from xcult.io import replace_dir

TEXT = "text"  # the field the local copies hold the text in


def is_remote(path: str) -> bool:
    return "://" in path


def remote_paths(cfg: RunConfig) -> list[tuple[str, str, str]]:
    """(url, format, text field) of every remote document input (config validation
    keeps remote and local paths of one unit apart, and pairs local)."""
    sets = [(e.paths, e.format, e.text_field) for e in [cfg.prep.english] if e is not None]
    sets += [(lc.mono_paths, lc.mono_format, lc.mono_text_field) for lc in cfg.prep.languages.values()]
    return [(url, fmt, field) for paths, fmt, field in sets for url in paths if is_remote(url)]


def local_files(cfg: RunConfig, paths: list[str]) -> list[str]:
    """The local files the engine reads for a unit's document paths: the paths, or the
    fetched copies of remote ones (nothing yet when not fetched)."""
    out = []
    for p in paths:
        out += sorted(str(f) for f in layout.of(cfg).prep_input(p).glob("*.jsonl.gz")) if is_remote(p) else [p]
    return out


def _reader(url: str, fmt: str, field: str):
    from datatrove.pipeline.readers import HuggingFaceDatasetReader, JsonlReader, ParquetReader

    if url.startswith("hf://datasets/") and not any(c in url for c in "*?[") and "." not in url.rsplit("/", 1)[1]:
        name, _, revision = url.removeprefix("hf://datasets/").partition("@")
        return HuggingFaceDatasetReader(name, {"split": "train", **({"revision": revision} if revision else {})}, streaming=True, text_key=field)
    folder, pattern = url.rsplit("/", 1)
    reader = JsonlReader if fmt == "jsonl" else ParquetReader
    return reader(folder, glob_pattern=pattern or None, text_key=field)


def fetch(cfg: RunConfig, url: str, fmt: str, field: str) -> Path:
    """The local copy of one remote input, written by a datatrove pipeline unless current."""
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.writers import JsonlWriter

    final = layout.of(cfg).prep_input(url)
    settings = {"source": url, "format": fmt, "text_field": field}
    if completion.status(final, settings, []):
        return final
    tmp = final.with_name(f".{final.name}.tmp")  # the run lock is held: a failed fetch's leftover is cleared next time
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    rec = completion.record(settings, [])
    writer = JsonlWriter(str(tmp), output_filename="${rank}.jsonl.gz", adapter=lambda _, doc: {TEXT: doc.text})
    LocalPipelineExecutor([_reader(url, fmt, field), writer], tasks=1, workers=1, logging_dir=str(tmp / "logs")).run()
    if not list(tmp.glob("*.jsonl.gz")):
        raise InputError(f"{url}: datatrove read no documents (logs: {final / 'logs'})", url)
    completion.write(tmp, rec)
    replace_dir(tmp, final)
    return final


def fetch_all(cfg: RunConfig) -> list[Path]:
    return [fetch(cfg, url, fmt, field) for url, fmt, field in remote_paths(cfg)]
