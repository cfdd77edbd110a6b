"""The prep stage as a datatrove pipeline step, so datatrove's executors (local,
Slurm, Ray; `xcult/corpus/executors.py`) distribute it: rank r builds units r,
r + world_size, ... of those it is given; a unit found current is skipped.
"""

from __future__ import annotations

from datatrove.pipeline.base import PipelineStep

from xcult.config import load_config
from xcult.corpus.prep import build_unit


class PrepUnits(PipelineStep):
    name = "xcult prep"
    type = "Tokenizer"

    def __init__(self, config_path: str, units: list[str], force: bool = False, progress: bool = True):
        super().__init__()
        self.config_path = config_path
        self.units = units
        self.force = force
        self.progress = progress

    def run(self, data=None, rank: int = 0, world_size: int = 1):
        cfg = load_config(self.config_path)
        for unit in self.units[rank::world_size]:
            with self.track_time():
                stats = build_unit(cfg, unit, force=self.force, progress=self.progress)
            if stats.get("skipped"):
                self.stat_update("units_skipped")
                continue
            self.stat_update("units_built")
            for out in stats["outputs"]:
                self.stat_update("documents", value=out["documents"])
                self.stat_update("tokens", value=out["tokens"])
        yield from data or ()
