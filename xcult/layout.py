"""Every path of a run, in one place: `layout.of(cfg)` is the only code that turns a
run config into file names. Stages ask it where their inputs and outputs live, and
read each other's outputs through it, never through each other's modules.

    <out_dir>/synth/            the synthetic world (corpora, pairs, probes, tokenizer)
    <out_dir>/prep/<unit>/      Megatron .bin/.idx + chunks per unit (en, <lang>/{with,without})
    <checkpoints>/<run>/        training runs: pretrain, ct-<lang>-<bridges>
    <out_dir>/eval/             scores per checkpoint, tables
    <out_dir>/index/<corpus>/   BM25 indexes; retrieval.parquet
    <out_dir>/judge/            judgments and the judge's cache
    <out_dir>/density/          density and instance tables
    <out_dir>/report/           report.html, data.json, figures
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

ENGLISH = "en"
SETTINGS = ("with", "without")


@dataclass(frozen=True)
class SynthFiles:
    """The files `xcult synth` writes, which the other stages read by default."""

    root: Path

    @property
    def english(self) -> Path:
        return self.root / "en.jsonl"

    def mono(self, lang: str) -> Path:
        return self.root / f"{lang}_mono.jsonl"

    def pairs(self, lang: str) -> Path:
        return self.root / f"{lang}_en.tsv"

    def lexicon(self, lang: str) -> Path:
        return self.root / f"{lang}_lexicon.tsv"

    @property
    def translation(self) -> Path:
        return self.root / "translation.jsonl"

    @property
    def probes(self) -> Path:
        return self.root / "probes"

    @property
    def controls(self) -> Path:
        return self.root / "controls"

    @property
    def planted(self) -> Path:
        return self.root / "planted.parquet"

    @property
    def tokenizer(self) -> Path:
        return self.root / "tokenizer.json"

    @property
    def world(self) -> Path:
        return self.root / "world.json"


# A probe source that is one table (rows: culture, lang, question, options, answer):
# a Hugging Face dataset (`hf://datasets/ORG/NAME[@REVISION]`) or a Parquet/JSON(L) file.
PROBE_TABLE_SUFFIXES = (".parquet", ".jsonl", ".json")


def is_probe_table(source: str) -> bool:
    return source.startswith("hf://datasets/") or (source.endswith(PROBE_TABLE_SUFFIXES) and "://" not in source)


def probe_file(base: str, culture: str, lang: str) -> str:
    """A probe file in the paper's naming (`<culture>-culture-cloze_<lang>.json`) under a
    directory or URL base; a table source is its own file for every culture."""
    if is_probe_table(base):
        return base
    return f"{base.rstrip('/')}/{culture}-culture-cloze_{lang}.json"


def user_cache() -> Path:
    """Downloads shared by every run (probe files, the packaged tokenizer): $XCULT_CACHE,
    else ~/.cache/xcult."""
    return Path(os.environ.get("XCULT_CACHE") or Path.home() / ".cache" / "xcult")


@dataclass(frozen=True)
class Layout:
    root: Path
    checkpoints: Path
    eval_checkpoints: str  # a pattern with {lang} and {bridges} (eval.checkpoints)

    # synth ---------------------------------------------------------------------------
    @property
    def synth(self) -> Path:
        return self.root / "synth"

    @property
    def synth_files(self) -> SynthFiles:
        return SynthFiles(self.synth)

    # prep ----------------------------------------------------------------------------
    @property
    def prep(self) -> Path:
        return self.root / "prep"

    def prep_input(self, url: str) -> Path:
        """The local copy of a remote corpus input (xcult/corpus/sources.py)."""
        return self.prep / "inputs" / hashlib.sha256(url.encode()).hexdigest()[:16]

    def unit(self, unit: str) -> Path:
        return self.prep / unit

    def unit_tmp(self, unit: str) -> Path:
        return self.prep / f".{unit}.tmp"

    def unit_shard(self, unit: str, index: int, count: int) -> Path:
        """The pool one task of a unit built by `count` tasks leaves for the merge."""
        return self.unit_shards(unit) / f"{index:05d}-of-{count:05d}"

    def unit_shards(self, unit: str) -> Path:
        return self.prep / f".{unit}.shards"

    @property
    def tokenizer_cache(self) -> Path:
        return self.prep / "tokenizer"

    @property
    def manifest(self) -> Path:
        return self.prep / "manifest.json"

    @property
    def prep_logs(self) -> Path:
        return self.prep / "datatrove"

    @property
    def prep_submitted(self) -> Path:
        """The Slurm job a `xcult prep` submitted and has not yet seen finish."""
        return self.prep / "submitted.json"

    def data_prefix(self, unit: str, setting: str | None = None) -> Path:
        """The Megatron prefix (`.bin` / `.idx`) of the English corpus or of one setting."""
        if unit == ENGLISH:
            return self.unit(ENGLISH) / ENGLISH
        return self.unit(unit) / setting / f"{unit}_{setting}"

    def chunks(self, corpus: str) -> Path:
        """A corpus's retrieval chunks: English, or a language's own text (monolingual
        documents and the pairs' native halves, from its without-bridges output)."""
        prefix = self.data_prefix(corpus, None if corpus == ENGLISH else "without")
        return prefix.with_name(prefix.name + ".chunks.parquet")

    # train ---------------------------------------------------------------------------
    def run(self, name: str) -> Path:
        return self.checkpoints / name

    @staticmethod
    def tensorboard(run_dir: Path) -> Path:
        """A run's TensorBoard events: training's curves, and eval's accuracy per checkpoint."""
        return run_dir / "tensorboard"

    def checkpoints_for(self, lang: str, bridges: str) -> Path:
        """Where eval finds a continued-pretraining run's checkpoints."""
        return Path(self.eval_checkpoints.format(out_dir=self.root, lang=lang, bridges=bridges))

    # eval ----------------------------------------------------------------------------
    @property
    def eval(self) -> Path:
        return self.root / "eval"

    def eval_items(self, culture: str, setting: str, step: int) -> Path:
        return self.eval / "items" / f"{culture}-{setting}-step{step:06d}.parquet"

    def eval_diagnostics(self, culture: str, setting: str, step: int) -> Path:
        return self.eval / "diagnostics" / self.eval_items(culture, setting, step).name

    def eval_lm_eval(self, lang: str, setting: str, step: int) -> Path:
        """lm-eval-format logs of one checkpoint (a language's run, a setting, a step)."""
        return self.eval / "lm_eval" / f"{lang}-{setting}-step{step:06d}"

    def eval_table(self, name: str) -> Path:
        """predictions, accuracy, transfer, main_table, instances, controls, diagnostics."""
        return self.eval / f"{name}.parquet"

    # index, judge, density -----------------------------------------------------------
    @property
    def index(self) -> Path:
        return self.root / "index"

    def index_dir(self, corpus: str) -> Path:
        return self.index / corpus

    @property
    def retrieval(self) -> Path:
        return self.index / "retrieval.parquet"

    @property
    def count(self) -> Path:
        return self.root / "count"

    def count_dir(self, corpus: str) -> Path:
        """A corpus's infini-gram datastore and suffix array."""
        return self.count / corpus

    @property
    def counts(self) -> Path:
        return self.count / "counts.parquet"

    @property
    def judge(self) -> Path:
        return self.root / "judge"

    @property
    def judgments(self) -> Path:
        return self.judge / "judgments.parquet"

    @property
    def density(self) -> Path:
        return self.root / "density"

    def density_table(self, name: str) -> Path:
        """occurrences, density, instance_occurrences."""
        return self.density / f"{name}.parquet"

    # report --------------------------------------------------------------------------
    @property
    def report(self) -> Path:
        return self.root / "report"

    @property
    def report_html(self) -> Path:
        return self.report / "report.html"


class RunPaths(Protocol):
    """What `of` reads of a RunConfig (config.py imports this module, not the reverse)."""

    out_dir: Path
    train: Any
    eval: Any


def of(cfg: RunPaths) -> Layout:
    out = cfg.out_dir
    checkpoints = Path(cfg.train.checkpoints.format(out_dir=out)) if cfg.train else out / "checkpoints"
    pattern = cfg.eval.checkpoints if cfg.eval else "{out_dir}/checkpoints/ct-{lang}-{bridges}"
    return Layout(out, checkpoints, pattern)
