"""The `xcult` command line: one command per stage, no work of its own."""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path

import click

from xcult.errors import XcultError


def clean_errors(fn):
    """An XcultError ends the command with its one-line message and exit code 2."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except XcultError as e:
            if os.environ.get("XCULT_DEBUG"):
                raise
            click.secho(f"error: {e}", fg="red", err=True)
            sys.exit(2)

    return wrapper


def load_for_writing(config: Path, command: str, lock: bool = True):
    """The run config, with the run directory's lock held until the command ends (a
    second command writing the same run stops with the holder's name and pid)."""
    from xcult import layout
    from xcult import lock as run_lock
    from xcult.config import load_config

    cfg = load_config(config)
    if lock:
        click.get_current_context().with_resource(run_lock.hold(layout.of(cfg).root, f"xcult {command}"))
    return cfg


@click.group()
@click.version_option(package_name="xcult")
@click.option("--debug", is_flag=True, help="Full tracebacks, and every log line of the engines on stderr.")
def main(debug: bool) -> None:
    """Cross-lingual transfer of cultural knowledge: corpora, training, evaluation, frequency."""
    if debug:
        os.environ["XCULT_DEBUG"] = "1"


@main.command()
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Rebuild outputs that are already complete.")
@click.option("--executor", type=click.Choice(["local", "slurm", "ray"]), default=None, help="Overrides prep.executor.")
@click.option("--no-progress", is_flag=True, help="No progress display.")
@clean_errors
def prep(config: Path, force: bool, executor: str | None, no_progress: bool) -> None:
    """Build the script-filtered, bridged, Megatron-ready corpora CONFIG names."""
    from xcult.corpus.executors import Submitted
    from xcult.corpus.stage import run_prep
    from xcult.corpus.summary import print_summary

    cfg = load_for_writing(config, "prep")
    stats = run_prep(cfg, force=force, executor=executor, progress=not no_progress)
    if isinstance(stats, Submitted):
        click.echo(stats.message(str(config)))
        return
    print_summary(cfg, stats)


@main.command()
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--stage", type=click.Choice(["pretrain", "ct"]), help="One run: pretraining, or continued pretraining (--lang, --bridges).")
@click.option("--lang", help="With --stage ct.")
@click.option("--bridges", type=click.Choice(["with", "without"]), help="With --stage ct.")
@click.option("--all", "all_", is_flag=True, help="Every run in order (pretrain, then each language x setting), skipping finished ones.")
@click.option("--dry-run", is_flag=True, help="Print the resolved jobs and torchrun commands; start nothing.")
@click.option("--stop-after", type=int, default=None, help="Stop each run after this step (it resumes later).")
@click.option("--force", is_flag=True, help="Retrain from scratch, deleting the run's checkpoints (a run whose inputs changed needs it).")
@clean_errors
def train(config: Path, stage, lang, bridges, all_, dry_run, stop_after, force) -> None:
    """Pretrain and continue pretraining with Megatron-Core under torchrun."""
    import json

    from xcult.train import launch

    cfg = load_for_writing(config, "train", lock=not dry_run)
    if cfg.train is None:
        raise click.UsageError(f"{config} has no [train] section")
    if all_ == (stage is not None):
        raise click.UsageError("give --stage or --all")
    todo = launch.runs(cfg) if all_ else [launch.find_run(cfg, stage, lang, bridges)]
    extra = ["--stop-after", str(stop_after)] if stop_after is not None else []
    for run in todo:
        if dry_run:
            job = launch.job(cfg, run, dry_run=True)
            click.echo(json.dumps(job, indent=2))
            click.echo("+ " + " ".join(launch.torchrun_command(cfg, launch.run_dir(cfg, run) / "job.json", extra)))
            continue
        if not force and launch.is_done(cfg, run):
            click.echo(f"{run.name}: finished and current, skipped")
            continue
        rc = launch.launch(cfg, run, extra, force=force)
        if rc != 0:
            click.secho(f"{run.name}: torchrun exited with {rc}", fg="red", err=True)
            sys.exit(rc)


@main.command()
@click.argument("checkpoint", type=click.Path(file_okay=False, path_type=Path))
@click.argument("out", type=click.Path(file_okay=False, path_type=Path))
@click.option("--dtype", type=click.Choice(["float32", "bfloat16"]), default="float32", show_default=True)
@clean_errors
def export(checkpoint: Path, out: Path, dtype: str) -> None:
    """Write a Megatron checkpoint (a run's iter_<N>) as a Hugging Face Qwen2 checkpoint."""
    from xcult.train.export import export as export_checkpoint

    click.echo(export_checkpoint(checkpoint, out, dtype))


@main.command("import")
@click.argument("source")
@click.argument("out", type=click.Path(file_okay=False, path_type=Path))
@clean_errors
def import_(source: str, out: Path) -> None:
    """Write a Hugging Face Qwen2 checkpoint (directory or hub id) as a Megatron run
    directory that continued pretraining starts from (train.init_from = OUT)."""
    from xcult.train.import_hf import import_hf

    click.echo(import_hf(source, out))


@main.command("eval")
@click.argument("config", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--model", type=click.Path(path_type=Path), help="One checkpoint instead of a config's sweep.")
@click.option("--probes", help="Probe directory or raw-URL base (with --model).")
@click.option("--cultures", default="zh,bo", show_default=True, help="With --model; CULTURE:LANG where the questions' language differs.")
@click.option("--tokenizer", "tokenizer_name", default=None, help="With --model: default the model's tokenizer.json, else qwen2.5.")
@click.option("--metric", type=click.Choice(["mean", "sum", "per_char", "answer_sum"]), default="mean", show_default=True)
@click.option("--mode", type=click.Choice(["xcult", "paper"]), default="xcult", show_default=True)
@click.option("--on-invalid", type=click.Choice(["error", "skip"]), default="error", show_default=True)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), help="With --model: write predictions and accuracy here.")
@click.option("--no-progress", is_flag=True)
@clean_errors
def eval_(config, model, probes, cultures, tokenizer_name, metric, mode, on_invalid, out, no_progress) -> None:
    """Score cloze probes: every checkpoint CONFIG names, or one --model on --probes."""
    from xcult.eval.summary import print_accuracy

    if config is not None:
        from xcult import layout
        from xcult.eval.run import run_eval

        cfg = load_for_writing(config, "eval")
        if cfg.eval is None:
            raise click.UsageError(f"{config} has no [eval] section")
        stats = run_eval(cfg, progress=not no_progress)
        print_accuracy(layout.of(cfg).eval, stats)
    elif model is not None and probes:
        from xcult.eval.run import evaluate_one

        acc = evaluate_one(model, probes, cultures.split(","), tokenizer_name, metric, mode, on_invalid, out, not no_progress)
        print_accuracy(acc)
    else:
        raise click.UsageError("give CONFIG, or --model and --probes")


@main.command()
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Rebuild indexes that are already complete.")
@clean_errors
def index(config: Path, force: bool) -> None:
    """Build BM25 indexes of the corpora (and, with [eval] probes, retrieve their top-k chunks)."""
    from rich.console import Console
    from rich.table import Table

    from xcult import layout
    from xcult.density.index import build_indexes, retrieve_probes

    cfg = load_for_writing(config, "index")
    stats = build_indexes(cfg, force)
    t = Table(title=f"BM25 indexes in {layout.of(cfg).index}")
    for c in ("corpus", "chunks", "other-language chunks left out", "seconds", "chunks/s", ""):
        t.add_column(c)
    for corpus, s in stats.items():
        t.add_row(corpus, str(s["chunks"]), str(s["chunks_skipped_language"]), f"{s['seconds']:.2f}", f"{s['chunks_per_second']:,.0f}", "skipped" if s.get("skipped") else "built")
    Console().print(t)
    if cfg.eval is not None:
        click.echo(f"retrieval: {retrieve_probes(cfg)}")


@main.command()
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Rebuild datastores that are already current.")
@clean_errors
def count(config: Path, force: bool) -> None:
    """Exact occurrence counts per probe (infini-gram suffix arrays over each corpus)."""
    import polars as pl
    from rich.console import Console
    from rich.table import Table

    from xcult import layout
    from xcult.density.count import run_count

    cfg = load_for_writing(config, "count")
    if cfg.eval is None or cfg.count is None:
        raise click.UsageError(f"{config} needs [eval] (the probes) and [count] sections")
    s = run_count(cfg, force=force)
    t = Table(title=f"exact counts ({layout.of(cfg).counts})")
    for c in ("corpus", "documents", "MB", "suffix array s", "now"):
        t.add_column(c)
    for corpus, d in s["datastores"].items():
        t.add_row(corpus, f"{d['documents']:,}", f"{d['bytes'] / 1e6:.1f}", f"{d['suffix_array_seconds']:.1f}", "built" if corpus in s["built_now"] else "current")
    Console().print(t)
    c = pl.read_parquet(layout.of(cfg).counts)
    means = c.group_by("culture", "lang").agg(pl.col("exact_answer", "exact_statement", "exact_answer_entity").mean()).sort("culture", "lang")
    for r in means.iter_rows(named=True):
        click.echo(f"{r['culture']:>10} {r['lang']:>3}: mean answer {r['exact_answer']:.1f}, statement {r['exact_statement']:.1f}, answer+entity {r['exact_answer_entity']:.1f}")
    click.echo(f"{s['probes']} probes counted in {s['query_seconds']} s ({s['approximate']} approximate)")


@main.command()
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--no-progress", is_flag=True, help="No progress display.")
@clean_errors
def judge(config: Path, no_progress: bool) -> None:
    """Judge whether each retrieved chunk entails its probe's fact (cached; resumes)."""
    from xcult import layout
    from xcult.density.judge import run_judge

    cfg = load_for_writing(config, "judge")
    s = run_judge(cfg, progress=not no_progress)
    click.echo(
        f"{s['pairs']:,} pairs: {s['judged']:,} judged ({s['pairs_per_second'] or 0:,.1f}/s), {s['cached']:,} from the cache, "
        f"{s['entailed']:,} entailed -> {layout.of(cfg).judgments}"
    )


@main.command()
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@clean_errors
def density(config: Path) -> None:
    """Occurrences per probe, cultural density (Table 1) and the instance comparison."""
    import json

    import polars as pl
    from rich.console import Console
    from rich.table import Table

    from xcult import layout
    from xcult.density import density as density_stage

    cfg = load_for_writing(config, "density")
    click.echo(f"density: {density_stage.stage(cfg, progress=False).state}")  # as `xcult run` does: kept when current
    lay = layout.of(cfg)
    stats = json.loads((lay.density / "stats.json").read_text())
    d = pl.read_parquet(lay.density_table("density"))
    t = Table(title=f"Cultural density ({lay.density})")
    for c in ("culture", "corpus", "items", "occurrences", "documents", "density", "per item", "co-occurrence"):
        t.add_column(c)
    for r in d.iter_rows(named=True):
        t.add_row(r["culture"], r["corpus"], str(r["items"]), str(r["occurrences"]), f"{r['documents']:,}", f"{r['density']:.3g}", f"{r['density_per_item']:.3g}", str(r["cooccurrence"]))
    Console().print(t)
    if "instance_occurrences" in stats:
        click.echo(stats["instance_occurrences"])


@main.command("search")
@click.argument("index_dir", type=click.Path(file_okay=False, path_type=Path))
@click.argument("query")
@click.option("-k", default=10, show_default=True, help="How many chunks.")
@click.option("--width", default=160, show_default=True, help="Snippet characters.")
@click.option("--dense-model", default=None, help="Search the index's dense embeddings with this model (built with index.dense_corpora).")
@clean_errors
def search_cmd(index_dir: Path, query: str, k: int, width: int, dense_model: str | None) -> None:
    """Ranked chunks of one index for QUERY, with BM25 (or cosine) scores and snippets."""
    from xcult.density.index import search

    hits = search(index_dir, [query], k, dense_model)[0]
    if hits.is_empty():
        click.echo("no chunk matches")
    for r in hits.iter_rows(named=True):
        snippet = " ".join(r["text"].split())[:width]
        click.echo(f"{r['rank']:3d}  {r['score']:8.3f}  chunk {r['chunk_id']}  doc {r['document_id']}  {snippet}")


@main.command()
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Rewrite a world that is already complete.")
@clean_errors
def synth(config: Path, force: bool) -> None:
    """Write the synthetic bilingual world CONFIG's [synth] section describes."""
    from xcult import layout
    from xcult.synth.write import run_synth

    cfg = load_for_writing(config, "synth")
    if cfg.synth is None:
        raise click.UsageError(f"{config} has no [synth] section")
    s = run_synth(cfg, force)
    state = "kept" if s.get("skipped") else f"written in {s['seconds']:.1f} s"
    click.echo(
        f"{layout.of(cfg).synth} ({state}): {s['facts']} facts in tiers {s['tiers']}; {s['documents_en']:,} English and "
        f"{s['documents_native']:,} {s['language']} documents ({s['fact_documents_en']:,} / {s['fact_documents_native']:,} hold a fact); "
        f"{s['parallel_pairs']:,} pairs"
    )


@main.command()
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@clean_errors
def report(config: Path) -> None:
    """Render the report (figures, tables, report.html) from every stage's outputs."""
    from xcult.report.build import stage as report_stage

    path = report_stage(load_for_writing(config, "report"), progress=False).summary
    click.echo(f"report: {path}")


DEMO_CONFIG = Path(__file__).resolve().parent.parent / "configs" / "demo.toml"


@main.command()
@click.argument("config", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--no-progress", is_flag=True, help="No progress display.")
@clean_errors
def run(config: Path | None, no_progress: bool) -> None:
    """Every stage CONFIG has, in order, skipping finished work (default: the demo)."""
    from rich.console import Console
    from rich.table import Table

    from xcult import layout
    from xcult.pipeline import run_all

    if config is None:
        config = Path("configs/demo.toml") if Path("configs/demo.toml").is_file() else DEMO_CONFIG
    cfg = load_for_writing(config, "run")
    results = run_all(cfg, progress=not no_progress, echo=lambda m: click.secho(m, bold=True))
    t = Table(title=f"xcult run — {cfg.experiment.name} ({cfg.out_dir})")
    for c in ("stage", "status", "seconds", "summary"):
        t.add_column(c, justify="right" if c == "seconds" else "left")
    for r in results:
        t.add_row(r.name, r.status, f"{r.seconds:.1f}", r.summary)
    console = Console()
    console.print(t)
    if results and results[-1].pending:
        click.echo(results[-1].pending)
        return
    lay = layout.of(cfg)
    main_table = lay.eval_table("main_table")
    if main_table.is_file():
        import polars as pl

        from xcult.eval.summary import transfer_view

        console.print(transfer_view(pl.read_parquet(main_table)))
        diag = lay.eval_table("diagnostics")
        if diag.is_file():
            from xcult.eval.summary import diagnostics_line

            console.print(diagnostics_line(pl.read_parquet(diag)))
    report = lay.report_html
    if report.is_file():
        console.print(f"report: {report}")


@main.command()
@click.argument("config", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Override for every run (TOML value).")
@click.option("--grid", "grids", multiple=True, metavar="KEY=V1;V2", help="One run per value (several --grid multiply).")
@click.option("--seeds", default=None, help="Comma-separated experiment seeds (default: the config's).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None, help="Default: runs/<name>-sweep.")
@click.option("--jobs", type=int, default=None, help="Runs side by side (default: cores / train.threads).")
@click.option("--dry-run", is_flag=True, help="Write and validate the run configs; run nothing.")
@clean_errors
def sweep(config: Path, sets, grids, seeds, out, jobs, dry_run) -> None:
    """Many runs from one CONFIG (overrides x seeds), each an ordinary `xcult run`; then
    one table of transfer gaps across them (resumable: finished runs are skipped)."""
    from rich.console import Console

    from xcult.config import load_config
    from xcult.eval.summary import pooled_view, sweep_view
    from xcult.sweep import collect, default_jobs, execute, plan, pool_seeds

    base = load_config(config)
    seed_list = [int(x) for x in seeds.split(",")] if seeds else [base.experiment.seed]
    out = out or Path("runs") / f"{base.experiment.name}-sweep"
    runs = plan(config, list(sets), list(grids), seed_list, out)
    click.echo(f"sweep: {len(runs)} runs under {out}")
    if dry_run:
        for r in runs:
            click.echo(f"  {r.label}: {r.config}")
        return
    threads = (base.train.threads if base.train else 0) or 2  # torch's default uses every core
    codes = execute(runs, jobs or default_jobs(threads), echo=click.echo)
    summary = collect(runs, out)
    if not summary.is_empty():
        Console().print(sweep_view(summary))
        click.echo(f"summary: {out / 'summary.parquet'}")
    if len(seed_list) > 1 and not (pooled := pool_seeds(runs, out)).is_empty():
        Console().print(pooled_view(pooled))
        click.echo(f"pooled: {out / 'pooled.parquet'}")
    failed = [k for k, c in codes.items() if c != 0]
    if failed:
        raise click.ClickException(f"{len(failed)} runs failed: {', '.join(failed)} (their run.log says why; run the sweep again to resume)")


@main.group()
def probes() -> None:
    """Build probe sets."""


@probes.command("from-templates")
@click.argument("people", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.argument("templates", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--culture", required=True, help="Culture name in the output file names.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option("--seed", type=int, default=0, show_default=True)
@clean_errors
def from_templates(people: Path, templates: Path, culture: str, out: Path, seed: int) -> None:
    """Appendix D probes: PEOPLE (TSV of attributes) x TEMPLATES (TOML, one table per language)."""
    from xcult.probe_templates import build_probes

    s = build_probes(people, templates, culture, out, seed)
    click.echo(f"items {s.items}; skipped {s.skipped or 'none'}")
    for f in s.files:
        click.echo(f"  {f}")


@probes.command("to-lm-eval")
@click.argument("out", type=click.Path(file_okay=False, path_type=Path))
@click.option("--probes", "source", required=True, help="Probe directory or raw-URL base.")
@click.option("--cultures", default="zh,bo", show_default=True, help="CULTURE:LANG where the questions' language differs.")
@click.option("--on-invalid", type=click.Choice(["error", "skip"]), default="error", show_default=True)
@clean_errors
def to_lm_eval(out: Path, source: str, cultures: str, on_invalid: str) -> None:
    """Write lm-evaluation-harness tasks (YAML + JSONL) for a probe set: run them with
    `lm_eval run --include_path OUT --tasks xcult ...`."""
    from xcult.eval.lm_eval_format import write_tasks
    from xcult.probes import load_culture

    langs = dict(c.split(":", 1) if ":" in c else (c, c) for c in cultures.split(","))
    names = write_tasks([load_culture(source, c, lang, on_invalid) for c, lang in langs.items()], out)
    click.echo(f"{len(names)} tasks in {out} (group: xcult): {', '.join(names)}")


@main.command()
@click.argument("a", type=click.Path(exists=True, path_type=Path))
@click.argument("b", type=click.Path(exists=True, path_type=Path))
@click.option("--metric", default=None, help="Accuracy key in the logs: acc, acc_norm, acc_mean, ... (default: acc_mean where both have it, else acc).")
@click.option("--bootstrap", "n_boot", type=int, default=10_000, show_default=True)
@click.option("--alpha", type=float, default=0.05, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Also write the table and notes as JSON.")
@clean_errors
def compare(a: Path, b: Path, metric, n_boot: int, alpha: float, seed: int, out) -> None:
    """Paired significance between two sample logs (lm-eval's --log_samples output or
    xcult eval's eval/lm_eval/<checkpoint>): per task, gap A - B with a BCa CI,
    exact McNemar and Holm across tasks."""
    from rich.console import Console

    from xcult.eval.compare import compare as compare_logs
    from xcult.eval.summary import compare_view
    from xcult.io import write_json_atomic

    table, notes = compare_logs(a, b, metric, n_boot, alpha, seed)
    Console().print(compare_view(table, notes))
    for side, tasks in notes["only_in"].items():
        if tasks:
            click.echo(f"only in {side} (not compared): {', '.join(tasks)}")
    if out is not None:
        write_json_atomic(out, {**notes, "rows": table.to_dicts()})


@main.command("sample-data")
@click.argument("out", type=click.Path(file_okay=False, path_type=Path))
@click.option("--seed", default=0, show_default=True)
@click.option("--scale", default=1, show_default=True, help="Multiplies every file's size.")
@clean_errors
def sample_data(out: Path, seed: int, scale: int) -> None:
    """Write the small multilingual sample that configs/small.toml reads."""
    from xcult.corpus.sample import write_sample

    for role, path in write_sample(out, seed=seed, scale=scale).items():
        click.echo(f"{role:12} {path}")


if __name__ == "__main__":
    main()
