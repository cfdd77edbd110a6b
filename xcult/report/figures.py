"""The report's figures (matplotlib, Agg): each function takes polars frames and writes
one PNG."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import polars as pl  # noqa: E402

from xcult.stats import ema  # noqa: E402

COLORS = {"with": "#c0392b", "without": "#2471a3"}


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def accuracy_curves(acc: pl.DataFrame, path: Path, weight: float = 0.8) -> Path:
    """The paper's Figure 3: accuracy vs continued-pretraining step, with vs without
    bridges, per culture (rows) and question language (columns); EMA-smoothed lines over
    faint raw points; chance (1/options) dashed."""
    cultures = acc["culture"].unique(maintain_order=True).to_list()
    fig, axes = plt.subplots(len(cultures), 2, figsize=(9, 2.6 * len(cultures)), squeeze=False, sharex=True)
    for r, culture in enumerate(cultures):
        g = acc.filter(pl.col("culture") == culture)
        native = [x for x in g["lang"].unique().to_list() if x != "en"]
        for c, lang in enumerate(["en", *native][:2]):
            ax = axes[r][c]
            for setting in ("with", "without"):
                s = g.filter((pl.col("lang") == lang) & (pl.col("setting") == setting)).sort("step")
                if s.is_empty():
                    continue
                x, y = s["step"].to_list(), s["accuracy"].to_list()
                ax.plot(x, y, "o", color=COLORS[setting], alpha=0.25, markersize=3)
                ax.plot(x, ema(y, weight), "-", color=COLORS[setting], label=f"{setting} bridges")
            ax.axhline(0.25, color="grey", lw=0.8, ls="--")
            ax.set_ylim(0, 1.02)
            ax.set_title(f"{culture}: {lang} questions", fontsize=10)
            if r == len(cultures) - 1:
                ax.set_xlabel("continued-pretraining step")
            if c == 0:
                ax.set_ylabel("accuracy")
    axes[0][0].legend(fontsize=8, loc="lower right")
    return _save(fig, path)


def asymmetry(main: pl.DataFrame, path: Path) -> Path:
    """In the spirit of the paper's Figure 1: per culture, an arrow for each direction of
    transfer (English -> native above, native -> English below), labelled with the gap
    and its CI; solid and dark when significant, faint and dashed when not."""
    cultures = main["culture"].unique(maintain_order=True).to_list()
    fig, axes = plt.subplots(1, len(cultures), figsize=(3.2 * len(cultures), 2.6), squeeze=False)
    for ax, culture in zip(axes[0], cultures):
        g = main.filter(pl.col("culture") == culture)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.axis("off")
        ax.text(0.02, 0.5, "EN", fontsize=13, va="center", weight="bold")
        for r in g.iter_rows(named=True):
            src, dst = r["direction"].split("->")
            native = dst if src == "en" else src
            ax.text(0.98, 0.5, native.upper(), fontsize=13, va="center", ha="right", weight="bold")
            forward = src == "en"
            y = 0.7 if forward else 0.3
            sig = bool(r["significant"]) and r["gap"] > 0
            width = 1 + 6 * max(r["gap"], 0.0)
            ax.annotate(
                "", xy=(0.82 if forward else 0.18, y), xytext=(0.18 if forward else 0.82, y),
                arrowprops=dict(arrowstyle="-|>", lw=width, color=COLORS["with"] if sig else "#aaaaaa", ls="-" if sig else "--"),
            )
            ax.text(0.5, y + (0.08 if forward else -0.12), f"{r['gap']:+.2f} [{r['ci_low']:+.2f}, {r['ci_high']:+.2f}]", ha="center", fontsize=8)
        ax.set_title(culture, fontsize=10)
    return _save(fig, path)


def diagnostics(diag: pl.DataFrame, path: Path) -> Path:
    """Per checkpoint, with vs without bridges: held-out translation accuracy (names,
    values), embedding alignment of translations, and unification (parallel minus
    baseline cosine, centred and uncentred) averaged over cultures."""
    panels = [
        ("translation_name", "translation: names"),
        ("translation_value", "translation: values"),
        ("embedding_alignment", "embedding alignment"),
        ("unification", "unification (centred)"),
        ("unification_uncentred", "unification (uncentred)"),
    ]
    d = diag.with_columns(
        unification=pl.col("parallel") - pl.col("baseline"),
        unification_uncentred=pl.col("parallel_uncentred") - pl.col("baseline_uncentred"),
    )
    panels = [(c, t) for c, t in panels if c in d.columns]
    fig, axes = plt.subplots(1, len(panels), figsize=(3.0 * len(panels), 2.7), squeeze=False)
    for ax, (col, title) in zip(axes[0], panels):
        for setting in ("with", "without"):
            s = d.filter(pl.col("setting") == setting).group_by("step").agg(pl.col(col).mean()).sort("step")
            ax.plot(s["step"], s[col], "o-", ms=3, color=COLORS[setting], label=setting)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("step")
    axes[0][0].legend(fontsize=7)
    return _save(fig, path)


def density_vs_planted(t: pl.DataFrame, path: Path) -> Path:
    """Judged occurrences per probe vs the documents it was planted in, per corpus."""
    corpora = t["corpus"].unique(maintain_order=True).to_list()
    fig, axes = plt.subplots(1, len(corpora), figsize=(3.6 * len(corpora), 3.2), squeeze=False)
    for ax, corpus in zip(axes[0], corpora):
        g = t.filter(pl.col("corpus") == corpus)
        ax.scatter(g["planted"], g["occurrences"], s=12, alpha=0.6, label="judged (top-k)")
        if "cooccurrence" in g.columns:
            ax.scatter(g["planted"], g["cooccurrence"], s=12, alpha=0.6, marker="x", label="co-occurrence")
        if "exact_answer_entity" in g.columns:
            ax.scatter(g["planted"], g["exact_answer_entity"], s=12, alpha=0.6, marker="+", label="exact answer+entity")
        top = max(1, int(g["planted"].max() or 1))
        ax.plot([0, top], [0, top], color="grey", lw=0.8)
        ax.set_title(f"{corpus} corpus", fontsize=10)
        ax.set_xlabel("planted documents")
    axes[0][0].set_ylabel("found")
    axes[0][0].legend(fontsize=7)
    return _save(fig, path)


def transfer_by_frequency(t: pl.DataFrame, path: Path) -> Path:
    """Target-language accuracy with and without bridges by the fact's frequency in the
    source language's corpus (final checkpoints); bars: the gap's paired bootstrap CI,
    drawn around the with-bridges point."""
    keys = t.select("culture", "direction").unique(maintain_order=True).rows()
    cols = min(3, len(keys))
    rows = (len(keys) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 2.8 * rows), squeeze=False, sharey=True)
    for ax in axes.flat[len(keys) :]:
        ax.axis("off")
    for ax, (culture, direction) in zip(axes.flat, keys):
        g = t.filter((pl.col("culture") == culture) & (pl.col("direction") == direction))  # rows come in bin order
        x = [str(v) for v in g["frequency"]]
        ax.plot(x, g["acc_with"], "o-", color=COLORS["with"], label="with")
        lo = (g["acc_without"] + g["ci_low"]).to_list()
        hi = (g["acc_without"] + g["ci_high"]).to_list()
        ax.vlines(x, lo, hi, color=COLORS["with"], alpha=0.5, lw=3)
        ax.plot(x, g["acc_without"], "o-", color=COLORS["without"], label="without")
        ax.set_title(f"{culture} {direction}", fontsize=9)
        ax.set_xlabel("frequency in source corpus")
        ax.set_ylim(0, 1.02)
    for row in axes:
        row[0].set_ylabel("accuracy")
    axes[0][0].legend(fontsize=7)
    return _save(fig, path)
