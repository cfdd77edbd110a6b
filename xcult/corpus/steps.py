"""The prep stage as a datatrove pipeline step, so datatrove's executors (local,
Slurm, Ray; `xcult/corpus/executors.py`) distribute it: rank r builds items r,
r + world_size, ... of those it is given, each a unit ("en") or one task's share of a
unit ("en@3/8", built into a pool for the unit's merge); current ones are skipped.
"""

from __future__ import annotations

from datatrove.pipeline.base import PipelineStep

from xcult.config import load_config
from xcult.corpus.prep import build_shard, build_unit


def item(unit: str, index: int | None = None, count: int | None = None) -> str:
    return unit if index is None else f"{unit}@{index}/{count}"


class PrepUnits(PipelineStep):
    name = "xcult prep"
    type = "Tokenizer"

    def __init__(self, config_path: str, items: list[str], force: bool = False, progress: bool = True):
        super().__init__()
        self.config_path = config_path
        self.items = items
        self.force = force
        self.progress = progress

    def run(self, data=None, rank: int = 0, world_size: int = 1):
        cfg = load_config(self.config_path)
        for it in self.items[rank::world_size]:
            unit, _, share = it.partition("@")
            with self.track_time():
                if share:
                    index, count = map(int, share.split("/"))
                    stats = build_shard(cfg, unit, index, count, force=self.force, progress=self.progress)
                else:
                    stats = build_unit(cfg, unit, force=self.force, progress=self.progress)
            if stats.get("skipped"):
                self.stat_update("skipped")
                continue
            self.stat_update("shards_built" if share else "units_built")
            for out in stats.get("outputs", []):
                self.stat_update("documents", value=out["documents"])
                self.stat_update("tokens", value=out["tokens"])
        yield from data or ()
