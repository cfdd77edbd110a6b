"""`xcult report`: polars over every stage's outputs -> PNGs and one self-contained
`report/report.html` (images embedded as data URIs, tables as HTML, and the tables'
exact values as JSON in a `<script id="xcult-data">` block, so every number on the page
traces back to a Parquet file named beside it). Sections whose stage has not run are
listed as missing, not faked."""

from __future__ import annotations

import base64
import html
import json
import time
from pathlib import Path

import polars as pl

from xcult import completion, layout
from xcult.config import RunConfig
from xcult.io import ensure_writable, write_json_atomic, write_text_atomic
from xcult.stage import StageReport, parts

FREQUENCY_BINS = [(0, 0), (1, 1), (2, 3), (4, 7), (8, 15), (16, 31), (32, None)]


def frequency_bin(n: int) -> str:
    for lo, hi in FREQUENCY_BINS:
        if n >= lo and (hi is None or n <= hi):
            return str(lo) if lo == hi else (f"{lo}+" if hi is None else f"{lo}-{hi}")
    raise ValueError(n)


def item_frequencies(cfg: RunConfig) -> pl.DataFrame | None:
    """Per (culture, corpus, item): the planted count for synthetic worlds, else the
    judged occurrences from `xcult density`."""
    lay = layout.of(cfg)
    planted = lay.synth_files.planted
    if cfg.synth is not None and planted.is_file():
        p = pl.read_parquet(planted)
        lang = cfg.synth.language
        return pl.concat(
            [
                p.select("culture", "item", frequency=pl.col("planted_en")).with_columns(corpus=pl.lit("en")),
                p.select("culture", "item", frequency=pl.col("planted_native") + pl.col("planted_pairs")).with_columns(corpus=pl.lit(lang)),
            ]
        ).select("culture", "corpus", "item", "frequency")
    occ = lay.density_table("occurrences")
    if occ.is_file():
        return pl.read_parquet(occ).select("culture", "corpus", "item", frequency=pl.col("occurrences"))
    return None


def transfer_by_frequency(pred: pl.DataFrame, freq: pl.DataFrame, n_boot: int = 2000, alpha: float = 0.05, seed: int = 0) -> pl.DataFrame:
    """Target-language accuracy at each setting's final checkpoint, with and without
    bridges, by the fact's frequency (binned) in the source language's corpus, with the
    gap's paired bootstrap CI per bin."""
    from xcult.stats import paired_bootstrap_ci

    last = pred.group_by("setting", "culture").agg(pl.col("step").max().alias("last"))
    p = pred.join(last, on=["setting", "culture"]).filter(pl.col("step") == pl.col("last"))
    native = p.filter(pl.col("lang") != "en").group_by("culture").agg(pl.col("lang").first().alias("native"))
    p = p.join(native, on="culture").with_columns(
        direction=pl.when(pl.col("lang") == "en").then(pl.col("native") + "->en").otherwise("en->" + pl.col("native")),
        corpus=pl.when(pl.col("lang") == "en").then(pl.col("native")).otherwise(pl.lit("en")),
    )
    p = p.join(freq, on=["culture", "corpus", "item"], how="inner").with_columns(
        frequency=pl.col("frequency").map_elements(frequency_bin, return_dtype=pl.Utf8),
        order=pl.col("frequency"),
    )
    rows = []
    for (culture, direction, frequency), g in p.group_by("culture", "direction", "frequency"):
        a = g.filter(pl.col("setting") == "with").sort("item")["correct"].to_numpy()
        b = g.filter(pl.col("setting") == "without").sort("item")["correct"].to_numpy()
        if len(a) == 0 or len(a) != len(b):
            continue
        lo, hi = paired_bootstrap_ci(a, b, n_boot, alpha, seed)
        rows.append(
            {
                "culture": culture, "direction": direction, "frequency": frequency, "order": int(g["order"].min()),
                "n": len(a), "acc_with": float(a.mean()), "acc_without": float(b.mean()),
                "gap": float(a.mean() - b.mean()), "ci_low": lo, "ci_high": hi,
            }
        )
    return pl.DataFrame(rows).sort("culture", "direction", "order").drop("order")


def _fmt(v) -> str:
    if v is None:
        return "—"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        if v != v:
            return "nan"
        return f"{v:.3g}" if (abs(v) < 1e-3 and v != 0) else f"{v:.3f}"
    if isinstance(v, list):
        return ", ".join(map(str, v))
    return html.escape(str(v))


def table_html(t: pl.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in t.columns)
    body = "".join("<tr>" + "".join(f"<td>{_fmt(v)}</td>" for v in row) + "</tr>" for row in t.iter_rows())
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def image_html(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


CSS = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222;background:#fff}
h1{font-size:1.6em}h2{font-size:1.25em;margin-top:2em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:.85em;margin:.6em 0}td,th{border:1px solid #ccc;padding:3px 7px;text-align:right}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}img{max-width:100%}
.src{color:#777;font-size:.8em}.missing{color:#a33}
"""


def build_report(cfg: RunConfig) -> Path:
    from xcult.report import figures

    lay = layout.of(cfg)
    out = lay.report
    ensure_writable(out)
    sections: list[str] = []
    data: dict[str, list[dict]] = {}

    def src(*paths: Path) -> str:
        return '<p class="src">from ' + ", ".join(html.escape(str(p)) for p in paths) + "</p>"

    def missing(title: str, what: str) -> None:
        sections.append(f'<h2>{title}</h2><p class="missing">not available: {html.escape(what)}</p>')

    def table(name: str, t: pl.DataFrame) -> str:
        data[name] = t.to_dicts()
        return table_html(t)

    acc_path = lay.eval_table("accuracy")
    if acc_path.is_file():
        acc = pl.read_parquet(acc_path)
        png = figures.accuracy_curves(acc, out / "accuracy_curves.png")
        sections.append(
            "<h2>(a) Accuracy during continued pretraining (Figure 3)</h2>"
            "<p>Lines: EMA (weight 0.8); faint points: raw accuracy per checkpoint; dashed: chance.</p>"
            + image_html(png, "accuracy curves")
            + src(acc_path)
        )
    else:
        missing("(a) Accuracy during continued pretraining (Figure 3)", f"{acc_path} (run `xcult eval`)")

    main_path = lay.eval_table("main_table")
    if main_path.is_file():
        m = pl.read_parquet(main_path).select("culture", "direction", "step", "n", "acc_with", "acc_without", "gap", "ci_low", "ci_high", "p_mcnemar", "significant", "p_holm", "significant_holm")
        sections.append(
            "<h2>(b) Transfer at the final checkpoint: acc(with bridges) − acc(without)</h2>"
            f"<p>Paired BCa bootstrap {int((1 - cfg.eval.alpha) * 100)}% CI; exact McNemar test; significant when both exclude no effect; "
            "<code>p_holm</code>: the McNemar p-values Holm-corrected over this table's culture × direction cells.</p>"
            + table("transfer", m)
            + src(main_path)
        )
        png = figures.asymmetry(m, out / "asymmetry.png")
        sections.append(
            "<h2>Asymmetry (in the spirit of the paper's Figure 1)</h2>"
            "<p>Per culture, English → native (above) and native → English (below): the gap with its CI; "
            "solid red when significant and positive.</p>" + image_html(png, "asymmetry") + src(main_path)
        )
    else:
        missing("(b) Transfer", f"{main_path} (run `xcult eval`)")

    pred_path, freq = lay.eval_table("predictions"), item_frequencies(cfg)
    if pred_path.is_file() and freq is not None:
        tf = transfer_by_frequency(pl.read_parquet(pred_path), freq, cfg.eval.bootstrap, cfg.eval.alpha, cfg.experiment.seed)
        png = figures.transfer_by_frequency(tf, out / "transfer_by_frequency.png")
        what = "documents the fact was planted in" if cfg.synth is not None else "judged occurrences"
        sections.append(
            "<h2>Transfer by frequency</h2>"
            f"<p>Target-language accuracy at the final checkpoints by the fact's frequency ({what}) in the source language's corpus.</p>"
            + image_html(png, "transfer by frequency")
            + table("transfer_by_frequency", tf)
            + src(pred_path)
        )

    dens_path, occ_path = lay.density_table("density"), lay.density_table("occurrences")
    if dens_path.is_file():
        d = pl.read_parquet(dens_path)
        body = (
            "<h2>(c) Cultural density (Table 1)</h2>"
            "<p>density = judged occurrences (documents with an entailing chunk among each probe's top-k) summed over the probes / documents in the corpus; "
            "co-occurrence = chunks in the whole corpus holding the answer and the question's rarest terms (no judge); "
            "exact_* = <code>xcult count</code>'s exact occurrences, density_exact = answer-with-entity occurrences / documents.</p>"
            + table("density", d)
            + src(dens_path)
        )
        planted = lay.synth_files.planted
        if cfg.synth is not None and planted.is_file() and occ_path.is_file():
            occ = pl.read_parquet(occ_path)
            truth = freq.rename({"frequency": "planted"})
            t = occ.join(truth, on=["culture", "corpus", "item"], how="inner")
            png = figures.density_vs_planted(t, out / "density_vs_planted.png")
            agree = t.group_by("corpus").agg(
                pl.len().alias("probes"),
                (pl.col("occurrences") == pl.col("planted").clip(upper_bound=cfg.index.top_k)).mean().alias("judged_equals_planted"),
                pl.corr("occurrences", "planted").alias("pearson_judged"),
                pl.corr("cooccurrence", "planted").alias("pearson_cooccurrence"),
                *[
                    x
                    for c in t.columns
                    if c.startswith("exact_")
                    for x in ((pl.col(c) == pl.col("planted")).mean().alias(f"{c}_equals_planted"), pl.corr(c, "planted").alias(f"pearson_{c}"))
                ],
            ).sort("corpus")
            body += (
                "<p>Synthetic world: every estimator vs the documents each fact was planted in (ground truth). "
                "Judged: entailing documents among the top-k (capped at k); co-occurrence: chunks holding the answer and the question's rarest terms; "
                "exact (<code>xcult count</code>): occurrences of the answer, of the statement, and of the answer with the question's entity within the window.</p>"
                + image_html(png, "density vs planted")
                + table("density_vs_planted", agree)
            )
        sections.append(body)
    else:
        missing("(c) Cultural density", f"{dens_path} (run `xcult index`, `xcult judge`, `xcult density`)")

    inst_path = lay.eval_table("instances")
    if inst_path.is_file():
        inst = pl.read_parquet(inst_path)
        summary = (
            inst.group_by("culture", "direction")
            .agg(pl.len().alias("items"), pl.col("candidate").sum().alias("candidates"), pl.col("transferred").sum().alias("transferred"))
            .with_columns(rate=pl.col("transferred") / pl.col("candidates"))
            .sort("culture", "direction")
        )
        body = (
            "<h2>(d) Instance level (appendix C.4)</h2>"
            f"<p>Candidates: wrong in the target language before continued pretraining and right in the source language at the last {cfg.eval.last_k} checkpoints without bridges; "
            f"transferred: also right in the target language at the last {cfg.eval.last_k} bridged checkpoints.</p>"
            + table("instances", summary)
            + src(inst_path)
        )
        io_path = lay.density_table("instance_occurrences")
        if io_path.is_file():
            body += "<p>Mean occurrences in the source language's corpus.</p>" + table("instance_occurrences", pl.read_parquet(io_path)) + src(io_path)
        sections.append(body)

    diag_path = lay.eval_table("diagnostics")
    if diag_path.is_file():
        dg = pl.read_parquet(diag_path)
        png = figures.diagnostics(dg, out / "diagnostics.png")
        last = dg.join(dg.group_by("setting", "culture").agg(pl.col("step").max().alias("s")), on=["setting", "culture"]).filter(pl.col("step") == pl.col("s")).drop("s")
        body = (
            "<h2>(e) Diagnostics: translation, alignment, unification</h2>"
            "<p>Translation: held-out parallel pairs (never trained on), a word right when greedy teacher-forced decoding gives all its tokens. "
            "Embedding alignment: cosine of a word's embedding with its translation's minus with the others'. "
            "Unification: cosine of the mean hidden states of the same statement in both languages minus different statements' "
            "(centred: each language's mean removed; uncentred: raw).</p>"
            + image_html(png, "diagnostics")
            + table("diagnostics_final", last.sort("culture", "setting"))
            + src(diag_path)
        )
        if "control_accuracy" in acc.columns if acc_path.is_file() else False:
            final = acc.join(acc.group_by("setting", "culture").agg(pl.col("step").max().alias("s")), on=["setting", "culture"]).filter(pl.col("step") == pl.col("s"))
            ctrl = final.select("culture", "setting", "lang", "accuracy", "control_accuracy", "margin").sort("culture", "lang", "setting")
            body += (
                "<p>Swapped-community control: the same question and options asked of a community whose true value is none of them; "
                "accuracy there is option-prior bias (chance 0.25), to subtract before calling a gain transfer. Margin: mean CE of the best wrong option minus the answer's.</p>"
                + table("controls_final", ctrl)
                + src(acc_path)
            )
        sections.append(body)

    title = f"xcult report — {cfg.experiment.name}"
    payload = json.dumps(data, default=str).replace("</", "<\\/")  # cannot close the script element
    doc = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title><style>{CSS}</style></head><body>"
        f"<h1>{html.escape(title)}</h1><p class='src'>config {html.escape(str(cfg.path))}; output {html.escape(str(cfg.out_dir))}; "
        f"generated {time.strftime('%Y-%m-%d %H:%M:%S')}</p>"
        + "".join(sections)
        + f"<script type='application/json' id='xcult-data'>{payload}</script>"
        + "</body></html>"
    )
    target = lay.report_html
    write_text_atomic(target, doc)
    write_json_atomic(out / "data.json", data)
    return target


def _fingerprint(cfg: RunConfig) -> tuple[dict, list[Path]]:
    """The report depends on the whole config (titles, alpha, ...) and on every table
    it reads that exists."""
    lay = layout.of(cfg)
    tables = [lay.eval_table(n) for n in ("accuracy", "main_table", "predictions", "instances", "diagnostics")]
    tables += [lay.density_table(n) for n in ("density", "occurrences", "instance_occurrences")]
    tables.append(lay.synth_files.planted)
    return {"config": json.loads(json.dumps(cfg.to_dict(), default=str))}, [p for p in tables if p.is_file()]


def stage(cfg: RunConfig, progress: bool) -> StageReport:
    lay = layout.of(cfg)
    settings, inputs = _fingerprint(cfg)
    st = completion.status(lay.report_html, settings, inputs, lay.report / completion.RECORD)
    if not st:
        rec = completion.record(settings, inputs)
        build_report(cfg)
        completion.write(lay.report, rec)
    return StageReport(str(lay.report_html), **parts("report", st))
