"""The content-hash cache the judge and the translator share."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import polars as pl

from xcult.io import ensure_writable, write_parquet_atomic


class Cache:
    """Answers (judgments, translations) by content hash, in Parquet parts: a part that
    exists is complete, so a killed run loses at most the batch it was working on."""

    def __init__(self, directory: Path, dtype=pl.Float64):
        self.dir, self.dtype = directory, dtype
        ensure_writable(directory)
        parts = sorted(directory.glob("part-*.parquet"))
        self.values: dict = {}
        for p in parts:
            t = pl.read_parquet(p)
            self.values.update(zip(t["key"], t["value"]))
        self.parts = len(parts)

    @staticmethod
    def key(identity: dict, *texts: str) -> str:
        h = hashlib.sha256(json.dumps(identity, sort_keys=True, ensure_ascii=False).encode())
        for t in texts:
            h.update(b"\0" + t.encode())
        return h.hexdigest()

    def add(self, keys: list[str], values: list) -> None:
        if not keys:
            return
        name = f"part-{time.time_ns():020d}-{keys[0][:12]}.parquet"
        write_parquet_atomic(self.dir / name, pl.DataFrame({"key": keys, "value": values}, schema={"key": pl.Utf8, "value": self.dtype}))
        self.values.update(zip(keys, values))
        self.parts += 1
