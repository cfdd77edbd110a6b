"""`xcult eval`: every checkpoint x setting x culture x question language.

Layout under `<out_dir>/eval/`: `items/<culture>-<bridges>-step<N>.parquet` per checkpoint
(written atomically; an existing one is a finished checkpoint and is skipped), then
`predictions.parquet`, `accuracy.parquet`, `transfer.parquet`, `main_table.parquet`,
`instances.parquet`, `controls.parquet` (swapped-community items), `diagnostics.parquet`
(translation accuracy and unification per checkpoint, from `diagnostics/`),
`validation.json`, `config.json` and `stats.json`.
"""

from __future__ import annotations

import re
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import polars as pl

from xcult import completion, layout
from xcult.config import EvalConfig, RunConfig
from xcult.errors import ConfigError, MissingPathError
from xcult.io import ensure_writable, write_json_atomic, write_parquet_atomic
from xcult.probes import Culture, load_culture
from xcult.stage import StageReport
from xcult.tokenizer import tokenizer_for

SETTINGS = ("with", "without")
# A Hugging Face checkpoint per step (`step_<N>`), or Megatron ones as `xcult train` writes (`iter_<N:07d>`).
CHECKPOINT_DIR = re.compile(r"^(?:step_(\d+)|iter_(\d{7}))$")


def find_checkpoints(root: Path) -> dict[int, Path]:
    """`step_<N>` or `iter_<N>` directories under `root`, by step."""
    if not root.is_dir():
        return {}
    found = {}
    for p in root.iterdir():
        if p.is_dir() and (m := CHECKPOINT_DIR.match(p.name)):
            found[int(m.group(1) or m.group(2))] = p
    return found


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
        # lm-eval's view of each option (the filled sentence after the EOS): total
        # log-likelihood and whether it is the greedy continuation.
        "loglik": [s.loglik.tolist() for s in scored],
        "greedy": [s.greedy.tolist() for s in scored],
        "ranking": [np.argsort(s.scores, kind="stable").tolist() for s in scored],
        "prediction": [s.prediction for s in scored],
        "answer": answers,
        "correct": [s.prediction == a for s, a in zip(scored, answers)],
        # How far the answer beats the best other option (CE units; > 0 when right):
        # a continuous score with more power than accuracy for small gaps.
        "margin": [float(np.delete(s.scores, a).min() - s.scores[a]) for s, a in zip(scored, answers)],
        "n_tied": [s.n_tied for s in scored],
        # Expected accuracy if ties at the top were broken uniformly at random.
        "correct_ties": [
            (1.0 / s.n_tied) if s.scores[a] == s.scores.min() else 0.0 for s, a in zip(scored, answers)
        ],
    }
    return pl.DataFrame(rows, schema_overrides={"step": pl.Int64, "item": pl.Int64})


class Evaluator:
    """Loads a checkpoint once and scores every culture and language on it, with the
    diagnostics: swapped-community controls, held-out translation, unification."""

    def __init__(self, cfg: EvalConfig, tokenizer, eos_id: int, controls: dict[str, Culture], heldout: list, template: str | None):
        self.cfg, self.tokenizer, self.eos_id = cfg, tokenizer, eos_id
        self.controls, self.heldout, self.template = controls, heldout, template

    def evaluate(self, path: Path, cultures: list[Culture], setting: str, step: int, progress=None) -> tuple[pl.DataFrame, pl.DataFrame]:
        """Item rows (controls marked `control`), and one diagnostics row per culture."""
        from xcult.eval.backends import load_model
        from xcult.eval.diagnostics import embedding_alignment, translation_accuracy, unification
        from xcult.eval.scoring import ClozeScorer

        c = self.cfg
        model = load_model(c.backend, path, c.device, c.dtype, c.mode)
        scorer = ClozeScorer(model, self.tokenizer, self.eos_id, c.metric, c.mode, c.batch_tokens)
        translation = {}
        if self.heldout:
            translation = {f"translation_{k}": v for k, v in translation_accuracy(model, self.tokenizer, self.eos_id, self.template, self.heldout).items()}
            translation |= embedding_alignment(model, self.tokenizer, self.heldout)
        frames, diag = [], []
        for culture in cultures:
            for kind, source in (("probe", culture), ("control", self.controls.get(culture.name))):
                if source is None:
                    continue
                for lang in ("en", culture.lang):
                    rows = item_rows(source, lang, scorer.score(source.items(lang), progress), setting, step)
                    frames.append(rows.with_columns(kind=pl.lit(kind)))
            en, xx = (scorer.mean_states([it.statement() for it in culture.items(lang)]) for lang in ("en", culture.lang))
            row = {"setting": setting, "step": step, "culture": culture.name, **unification(en, xx)}
            row |= translation
            diag.append(row)
        return pl.concat(frames), pl.DataFrame(diag, schema_overrides={"step": pl.Int64})


def _record_path(target: Path) -> Path:
    return target.with_name(target.stem + ".completion.json")


def _item_fingerprint(e: EvalConfig, culture: Culture, control: Culture | None, tokenizer: Path, checkpoint: Path) -> tuple[dict, list[Path]]:
    """What a checkpoint's item scores depend on: the scoring settings, the probe,
    control and held-out files, the tokenizer and every file of the checkpoint (so a
    retrained checkpoint is rescored). Probes read from a URL are keyed by the URL."""
    files = [*culture.files.values(), *(control.files.values() if control else []), *([e.translation] if e.translation else [])]
    local = [Path(f) for f in files if "://" not in f]
    settings = {
        "format": 2,  # item columns (2: loglik, greedy)
        "metric": e.metric, "mode": e.mode, "dtype": e.dtype, "backend": e.backend, "on_invalid": e.on_invalid,
        "remote_probes": sorted(f for f in files if "://" in f), "items": culture.index,
    }
    return settings, [*local, tokenizer, *completion.tree_files(checkpoint)]


def accuracy_table(pred: pl.DataFrame, controls: pl.DataFrame | None = None) -> pl.DataFrame:
    """Accuracy per setting, step, culture and question language, with the mean option
    margin, RankC and (where controls were scored) the swapped-community accuracy."""
    from xcult.stats import rankc

    keys = ["setting", "step", "culture", "lang"]
    acc = (
        pred.group_by(*keys)
        .agg(
            n=pl.len(),
            accuracy=pl.col("correct").mean(),
            accuracy_ties=pl.col("correct_ties").mean(),
            margin=pl.col("margin").mean(),
            items_tied_at_top=(pl.col("n_tied") > 1).sum(),
        )
        .sort("culture", "setting", "step", "lang")
    )
    if controls is not None and not controls.is_empty():
        ctrl = controls.group_by(*keys).agg(control_accuracy=pl.col("correct").mean())
        acc = acc.join(ctrl, on=keys, how="left")
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

    from xcult.eval.diagnostics import load_heldout
    from xcult.eval.tensorboard import write_curves
    from xcult.eval.transfer import instance_table, main_table, transfer_table

    e = cfg.eval
    lay = layout.of(cfg)
    out = lay.eval
    ensure_writable(out / "items")
    ensure_writable(out / "diagnostics")
    cultures = [load_culture(e.probes, c, e.lang(c), e.on_invalid) for c in e.cultures]
    controls = {c: load_culture(e.controls, c, e.lang(c), e.on_invalid) for c in e.cultures} if e.controls else {}
    heldout = load_heldout(Path(e.translation)) if e.translation else []
    langs = {e.lang(c) for c in e.cultures}
    template = cfg.template(next(iter(langs))) if heldout and next(iter(langs)) in cfg.prep.languages else None
    if heldout and (len(langs) != 1 or template is None):
        raise ConfigError("eval.translation: held-out pairs need one native language that prep.languages defines", "eval.translation")
    write_json_atomic(out / "validation.json", [c.report() for c in cultures])
    for line in (w for c in cultures for w in c.warnings()):
        print(f"eval: warning: {line}", file=sys.stderr, flush=True)
    write_json_atomic(out / "config.json", cfg.to_dict())

    tok_path = tokenizer_for(cfg)
    todo, done, stale = [], [], []
    for culture in cultures:
        for setting in SETTINGS:
            root = lay.checkpoints_for(e.lang(culture.name), setting)
            ckpts = find_checkpoints(root)
            if not ckpts:
                raise MissingPathError(f"no step_<N> or iter_<N> checkpoints under {root} (eval.checkpoints)", str(root))
            for step, path in sorted(ckpts.items()):
                target = lay.eval_items(culture.name, setting, step)
                settings, inputs = _item_fingerprint(e, culture, controls.get(culture.name), tok_path, path)
                st = completion.status(target, settings, inputs, _record_path(target))
                if st.state == "stale":
                    stale.append(f"{target.name}: {st.reason}")
                (done if st else todo).append((culture, setting, step, path, target))
    for line in stale:
        print(f"eval: rescoring {line}", file=sys.stderr, flush=True)

    tokenizer = Tokenizer.from_file(str(tok_path))
    eos_id = tokenizer.token_to_id(cfg.tokenizer.eod)
    evaluator = Evaluator(e, tokenizer, eos_id, controls, heldout, template)
    n_questions = sum(2 * (len(c.index) + (len(controls[c.name].index) if c.name in controls else 0)) for c, *_ in todo)
    t0 = time.perf_counter()
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()]
    with Progress(*columns, disable=not progress) as bar:
        task = bar.add_task("eval questions", total=n_questions)
        for culture, setting, step, path, target in todo:
            bar.update(task, description=f"{culture.name} {setting} step {step}")
            frame, unif = evaluator.evaluate(path, [culture], setting, step, lambda n: bar.advance(task, n))
            settings, inputs = _item_fingerprint(e, culture, controls.get(culture.name), tok_path, path)
            rec = completion.record(settings, inputs)
            write_parquet_atomic(lay.eval_diagnostics(culture.name, setting, step), unif)  # before the items file and its record
            write_parquet_atomic(target, frame)
            completion.write(target, rec, _record_path(target))
    seconds = time.perf_counter() - t0

    scored = pl.concat([pl.read_parquet(p) for p in sorted((out / "items").glob("*.parquet"))])
    pred = scored.filter(pl.col("kind") == "probe").drop("kind").sort("culture", "setting", "step", "lang", "item")
    acc = accuracy_table(pred, scored.filter(pl.col("kind") == "control"))
    transfer = transfer_table(pred, e.bootstrap, e.alpha, cfg.experiment.seed)
    write_parquet_atomic(lay.eval_table("predictions"), pred)
    write_parquet_atomic(lay.eval_table("controls"), scored.filter(pl.col("kind") == "control").drop("kind"))
    write_parquet_atomic(lay.eval_table("accuracy"), acc)
    write_parquet_atomic(lay.eval_table("transfer"), transfer)
    write_parquet_atomic(lay.eval_table("main_table"), main_table(transfer, e.alpha))
    write_parquet_atomic(lay.eval_table("instances"), instance_table(pred, e.last_k))
    _write_lm_eval_logs(lay, e, pred, cultures, {(c.lang, s, st): p for c, s, st, p, _ in todo + done})
    diag = [pl.read_parquet(p) for p in sorted((out / "diagnostics").glob("*.parquet"))]
    if diag:
        write_parquet_atomic(lay.eval_table("diagnostics"), pl.concat(diag, how="diagonal").sort("culture", "setting", "step"))
    curves = []
    for lang in langs:
        curves += write_curves(acc.filter(pl.col("culture").is_in([c for c in e.cultures if e.lang(c) == lang])), {s: lay.checkpoints_for(lang, s) for s in SETTINGS})
    stats = {
        "checkpoints_scored": len(todo),
        "checkpoints_rescored": len(stale),
        "rescored": stale,
        "checkpoints_skipped": len(done),
        "questions_scored": n_questions,
        "seconds": round(seconds, 2),
        "questions_per_second": round(n_questions / seconds, 2) if todo and seconds > 0 else None,
        "tensorboard": [str(p) for p in curves],
        "eval": asdict(e),
    }
    write_json_atomic(out / "stats.json", stats)
    return stats


def _write_lm_eval_logs(lay, e: EvalConfig, pred: pl.DataFrame, cultures: list[Culture], checkpoints: dict) -> None:
    """One lm-eval-format log directory per checkpoint (`xcult compare` reads them), the
    directory replaced whole; directories of checkpoints no longer evaluated are removed."""
    import shutil

    from xcult.eval.lm_eval_format import write_logs

    keep = set()
    for (lang, setting, step), path in sorted(checkpoints.items()):
        names = [c.name for c in cultures if c.lang == lang]
        rows = pred.filter(pl.col("culture").is_in(names) & (pl.col("setting") == setting) & (pl.col("step") == step))
        d = lay.eval_lm_eval(lang, setting, step)
        write_logs(d, rows, cultures, e.metric, {"checkpoint": str(path), "setting": setting, "step": step, "mode": e.mode})
        keep.add(d.name)
    root = lay.eval / "lm_eval"
    for d in root.iterdir() if root.is_dir() else []:
        if d.name not in keep:
            shutil.rmtree(d)


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
    tokenizer = Tokenizer.from_file(str(resolve_tokenizer(tokenizer_name, layout.user_cache())))
    eos_id = tokenizer.token_to_id("<|endoftext|>")
    with Progress(disable=not progress) as bar:
        task = bar.add_task("eval questions", total=sum(2 * len(c.index) for c in loaded))
        pred, _ = Evaluator(e, tokenizer, eos_id, {}, [], None).evaluate(model, loaded, "model", 0, lambda n: bar.advance(task, n))
    pred = pred.drop("kind")
    acc = accuracy_table(pred)
    if out is not None:
        ensure_writable(out)
        write_parquet_atomic(out / "predictions.parquet", pred)
        write_parquet_atomic(out / "accuracy.parquet", acc)
        write_json_atomic(out / "validation.json", [c.report() for c in loaded])
        from xcult.eval.lm_eval_format import write_logs

        write_logs(out / "lm_eval", pred, loaded, metric, {"checkpoint": str(model), "mode": mode})
    return acc


def stage(cfg: RunConfig, progress: bool) -> StageReport:
    s = run_eval(cfg, progress=progress)
    n = s["checkpoints_scored"] + s["checkpoints_skipped"]
    new = s["checkpoints_scored"] - s["checkpoints_rescored"]
    return StageReport(
        f"{n} checkpoints ({s['checkpoints_scored']} scored now)",
        built=[f"{new} checkpoints"] if new else [],
        rebuilt=s["rescored"],
        current=[f"{s['checkpoints_skipped']} checkpoints"] if s["checkpoints_skipped"] else [],
    )
