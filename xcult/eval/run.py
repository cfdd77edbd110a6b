"""`xcult eval`: every checkpoint x setting x culture x question language.

Layout under `<out_dir>/eval/`: `items/<culture>-<bridges>-step<N>.parquet` per checkpoint
(written atomically; an existing one is a finished checkpoint and is skipped), then
`predictions.parquet`, `accuracy.parquet`, `transfer.parquet`, `main_table.parquet`,
`instances.parquet`, `unification.parquet` (from `unification/`, one file per checkpoint),
`validation.json`, `config.json` and `stats.json`.
"""

from __future__ import annotations

import re
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import polars as pl

from xcult.config import EvalConfig, RunConfig
from xcult.errors import MissingPathError
from xcult.io import ensure_writable, write_json_atomic, write_parquet_atomic
from xcult.probes import Culture, load_culture

SETTINGS = ("with", "without")
# A Hugging Face checkpoint per step (`step_<N>`), or Megatron ones as `xcult train` writes (`iter_<N:07d>`).
CHECKPOINT_DIR = re.compile(r"^(?:step_(\d+)|iter_(\d{7}))$")


def eval_dir(cfg: RunConfig) -> Path:
    return cfg.out_dir / "eval"


def find_checkpoints(root: Path) -> dict[int, Path]:
    """`step_<N>` or `iter_<N>` directories under `root`, by step."""
    if not root.is_dir():
        return {}
    found = {}
    for p in root.iterdir():
        if p.is_dir() and (m := CHECKPOINT_DIR.match(p.name)):
            found[int(m.group(1) or m.group(2))] = p
    return found


def checkpoint_root(cfg: RunConfig, culture: str, bridges: str) -> Path:
    e = cfg.eval
    return Path(e.checkpoints.format(out_dir=cfg.out_dir, lang=e.lang(culture), bridges=bridges))


def item_rows(culture: Culture, lang: str, scored, setting: str, step: int) -> pl.DataFrame:
    items = culture.items(lang)
    answers = [it.answer_index for it in items]
    rows = {
        "setting": [setting] * len(items),
        "step": [step] * len(items),
        "culture": [culture.name] * len(items),
        "lang": [lang] * len(items),
        "item": culture.index,
        "scores": [s.scores.tolist() for s in scored],
        "ranking": [np.argsort(s.scores, kind="stable").tolist() for s in scored],
        "prediction": [s.prediction for s in scored],
        "answer": answers,
        "correct": [s.prediction == a for s, a in zip(scored, answers)],
        "n_tied": [s.n_tied for s in scored],
        # Expected accuracy if ties at the top were broken uniformly at random.
        "correct_ties": [
            (1.0 / s.n_tied) if s.scores[a] == s.scores.min() else 0.0 for s, a in zip(scored, answers)
        ],
    }
    return pl.DataFrame(rows, schema_overrides={"step": pl.Int64, "item": pl.Int64})


class Evaluator:
    """Loads a checkpoint once and scores every culture and language on it."""

    def __init__(self, cfg: EvalConfig, tokenizer, eos_id: int):
        self.cfg, self.tokenizer, self.eos_id = cfg, tokenizer, eos_id

    def evaluate(self, path: Path, cultures: list[Culture], setting: str, step: int, progress=None) -> tuple[pl.DataFrame, pl.DataFrame]:
        """Item rows, and the unification row of each culture (parallel statements' hidden-state similarity)."""
        from xcult.eval.backends import load_model
        from xcult.eval.scoring import ClozeScorer
        from xcult.eval.unification import unification

        c = self.cfg
        model = load_model(c.backend, path, c.device, c.dtype, c.mode)
        scorer = ClozeScorer(model, self.tokenizer, self.eos_id, c.metric, c.mode, c.batch_tokens)
        frames, unif = [], []
        for culture in cultures:
            for lang in ("en", culture.lang):
                frames.append(item_rows(culture, lang, scorer.score(culture.items(lang), progress), setting, step))
            en, xx = (scorer.mean_states([it.statement() for it in culture.items(lang)]) for lang in ("en", culture.lang))
            parallel, baseline = unification(en, xx)
            unif.append({"setting": setting, "step": step, "culture": culture.name, "parallel": parallel, "baseline": baseline})
        return pl.concat(frames), pl.DataFrame(unif, schema_overrides={"step": pl.Int64})


def accuracy_table(pred: pl.DataFrame) -> pl.DataFrame:
    from xcult.eval.stats import rankc

    acc = (
        pred.group_by("setting", "step", "culture", "lang")
        .agg(
            n=pl.len(),
            accuracy=pl.col("correct").mean(),
            accuracy_ties=pl.col("correct_ties").mean(),
            items_tied_at_top=(pl.col("n_tied") > 1).sum(),
        )
        .sort("culture", "setting", "step", "lang")
    )
    # RankC between the English and native rankings of the same items and checkpoint.
    rc = []
    for (setting, step, culture), g in pred.group_by("setting", "step", "culture"):
        en = g.filter(pl.col("lang") == "en").sort("item")
        xx = g.filter(pl.col("lang") != "en").sort("item")
        value = float("nan")
        if len(en) and len(en) == len(xx) and len({len(r) for r in en["ranking"]} | {len(r) for r in xx["ranking"]}) == 1:
            value = rankc(np.array(en["ranking"].to_list()), np.array(xx["ranking"].to_list()))
        rc.append({"setting": setting, "step": step, "culture": culture, "rankc": value})
    return acc.join(pl.DataFrame(rc, schema_overrides={"step": pl.Int64}), on=["setting", "step", "culture"], how="left")


def run_eval(cfg: RunConfig, progress: bool = True) -> dict:
    """Evaluates every checkpoint the config names; returns the stats written to stats.json."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
    from tokenizers import Tokenizer

    from xcult.corpus.prep import tokenizer_for
    from xcult.eval.transfer import instance_table, main_table, transfer_table

    e = cfg.eval
    out = eval_dir(cfg)
    ensure_writable(out / "items")
    ensure_writable(out / "unification")
    cultures = [load_culture(e.probes, c, e.lang(c), e.on_invalid) for c in e.cultures]
    write_json_atomic(out / "validation.json", [c.report() for c in cultures])
    write_json_atomic(out / "config.json", cfg.to_dict())

    todo, done = [], []
    for culture in cultures:
        for setting in SETTINGS:
            root = checkpoint_root(cfg, culture.name, setting)
            ckpts = find_checkpoints(root)
            if not ckpts:
                raise MissingPathError(f"no step_<N> or iter_<N> checkpoints under {root} (eval.checkpoints)", str(root))
            for step, path in sorted(ckpts.items()):
                target = out / "items" / f"{culture.name}-{setting}-step{step:06d}.parquet"
                (done if target.exists() else todo).append((culture, setting, step, path, target))

    tokenizer = Tokenizer.from_file(str(tokenizer_for(cfg)))
    eos_id = tokenizer.token_to_id(cfg.tokenizer.eod)
    evaluator = Evaluator(e, tokenizer, eos_id)
    n_questions = sum(2 * len(c.index) for c, *_ in todo)
    t0 = time.perf_counter()
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()]
    with Progress(*columns, disable=not progress) as bar:
        task = bar.add_task("eval questions", total=n_questions)
        for culture, setting, step, path, target in todo:
            bar.update(task, description=f"{culture.name} {setting} step {step}")
            frame, unif = evaluator.evaluate(path, [culture], setting, step, lambda n: bar.advance(task, n))
            write_parquet_atomic(out / "unification" / target.name, unif)  # before the items file, which marks the checkpoint done
            write_parquet_atomic(target, frame)
    seconds = time.perf_counter() - t0

    pred = pl.concat([pl.read_parquet(p) for p in sorted((out / "items").glob("*.parquet"))])
    pred = pred.sort("culture", "setting", "step", "lang", "item")
    acc = accuracy_table(pred)
    transfer = transfer_table(pred, e.bootstrap, e.alpha, cfg.experiment.seed)
    write_parquet_atomic(out / "predictions.parquet", pred)
    write_parquet_atomic(out / "accuracy.parquet", acc)
    write_parquet_atomic(out / "transfer.parquet", transfer)
    write_parquet_atomic(out / "main_table.parquet", main_table(transfer))
    write_parquet_atomic(out / "instances.parquet", instance_table(pred, e.last_k))
    unif = [pl.read_parquet(p) for p in sorted((out / "unification").glob("*.parquet"))]
    if unif:
        write_parquet_atomic(out / "unification.parquet", pl.concat(unif).sort("culture", "setting", "step"))
    stats = {
        "checkpoints_scored": len(todo),
        "checkpoints_skipped": len(done),
        "questions_scored": n_questions,
        "seconds": round(seconds, 2),
        "questions_per_second": round(n_questions / seconds, 2) if todo and seconds > 0 else None,
        "eval": asdict(e),
    }
    write_json_atomic(out / "stats.json", stats)
    return stats


def evaluate_one(
    model: Path,
    probes: str,
    cultures: list[str],
    tokenizer_name: str | None = None,
    metric: str = "mean",
    mode: str = "xcult",
    on_invalid: str = "error",
    out: Path | None = None,
    progress: bool = True,
) -> pl.DataFrame:
    """Scores one checkpoint on the named cultures; returns (and with `out`, writes) accuracy."""
    from rich.progress import Progress
    from tokenizers import Tokenizer

    from xcult.tokenizer import resolve_tokenizer

    # "culture:lang" names a culture whose questions are in another language.
    langs = dict(c.split(":", 1) if ":" in c else (c, c) for c in cultures)
    e = EvalConfig(probes=probes, cultures=list(langs), languages=langs, metric=metric, mode=mode, on_invalid=on_invalid)
    loaded = [load_culture(probes, c, lang, on_invalid) for c, lang in langs.items()]
    if tokenizer_name is None:
        tokenizer_name = str(model / "tokenizer.json") if (model / "tokenizer.json").is_file() else "qwen2.5"
    tokenizer = Tokenizer.from_file(str(resolve_tokenizer(tokenizer_name, Path.home() / ".cache" / "xcult")))
    eos_id = tokenizer.token_to_id("<|endoftext|>")
    with Progress(disable=not progress) as bar:
        task = bar.add_task("eval questions", total=sum(2 * len(c.index) for c in loaded))
        pred, _ = Evaluator(e, tokenizer, eos_id).evaluate(model, loaded, "model", 0, lambda n: bar.advance(task, n))
    acc = accuracy_table(pred)
    if out is not None:
        ensure_writable(out)
        write_parquet_atomic(out / "predictions.parquet", pred)
        write_parquet_atomic(out / "accuracy.parquet", acc)
        write_json_atomic(out / "validation.json", [c.report() for c in loaded])
    return acc
