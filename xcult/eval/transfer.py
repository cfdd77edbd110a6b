"""Transfer estimates from per-item predictions.

Direction follows the question language: English questions measure X->EN transfer
(knowledge met in X answered in English), native questions EN->X.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from xcult.stats import holm, mcnemar_exact, paired_bootstrap_ci


def direction(culture_lang: str, question_lang: str) -> str:
    return f"{culture_lang}->en" if question_lang == "en" else f"en->{question_lang}"


def _native_lang(pred: pl.DataFrame, culture: str) -> str:
    return pred.filter((pl.col("culture") == culture) & (pl.col("lang") != "en"))["lang"][0]


def _correct(g: pl.DataFrame, setting: str, step: int) -> np.ndarray:
    return g.filter((pl.col("setting") == setting) & (pl.col("step") == step)).sort("item")["correct"].to_numpy()


def transfer_table(pred: pl.DataFrame, n_boot: int = 10_000, alpha: float = 0.05, seed: int = 0) -> pl.DataFrame:
    """acc(with) - acc(without) per culture, direction and shared step, with a paired
    bootstrap CI over items and the exact McNemar p-value."""
    rows = []
    for (culture, lang), g in pred.group_by("culture", "lang", maintain_order=True):
        steps_with = set(g.filter(pl.col("setting") == "with")["step"])
        steps_without = set(g.filter(pl.col("setting") == "without")["step"])
        native = _native_lang(pred, culture)
        for step in sorted(steps_with & steps_without):
            a, b = _correct(g, "with", step), _correct(g, "without", step)
            lo, hi = paired_bootstrap_ci(a, b, n_boot, alpha, seed)
            p = mcnemar_exact(a, b)
            rows.append(
                {
                    "culture": culture,
                    "lang": lang,
                    "direction": direction(native, lang),
                    "step": step,
                    "n": len(a),
                    "acc_with": float(a.mean()),
                    "acc_without": float(b.mean()),
                    "gap": float(a.mean() - b.mean()),
                    "ci_low": lo,
                    "ci_high": hi,
                    "p_mcnemar": p,
                    "significant": p < alpha,
                }
            )
    return pl.DataFrame(rows, schema_overrides={"step": pl.Int64})


def final_pairs(pred: pl.DataFrame) -> dict[tuple[str, str], tuple[np.ndarray, np.ndarray]]:
    """Per (culture, direction): items right with and without bridges at the last step
    both settings reached (the main table's checkpoint), in item order."""
    out = {}
    for (culture, lang), g in pred.group_by("culture", "lang", maintain_order=True):
        shared = set(g.filter(pl.col("setting") == "with")["step"]) & set(g.filter(pl.col("setting") == "without")["step"])
        if shared:
            step = max(shared)
            out[(culture, direction(_native_lang(pred, culture), lang))] = (_correct(g, "with", step), _correct(g, "without", step))
    return out


def main_table(transfer: pl.DataFrame, alpha: float = 0.05) -> pl.DataFrame:
    """The paper's main table: per culture and direction, the final shared checkpoint.
    `p_holm` corrects the McNemar p-values for the table's culture x direction family
    (Holm); `mark` stays the per-cell test, as in the paper."""
    final = transfer.group_by("culture", "direction").agg(pl.col("step").max())
    table = transfer.join(final, on=["culture", "direction", "step"]).sort("culture", "direction")
    p_holm = holm(table["p_mcnemar"].to_numpy(), alpha)
    return table.with_columns(
        p_holm=pl.Series(p_holm, dtype=pl.Float64),
        significant_holm=pl.Series(p_holm < alpha, dtype=pl.Boolean),
        mark=pl.when(pl.col("significant") & (pl.col("gap") > 0)).then(pl.lit("✓")).otherwise(pl.lit("✗")),
    )


def instance_table(pred: pl.DataFrame, last_k: int = 3) -> pl.DataFrame:
    """Appendix C.4 per item, both directions. For X->EN: wrong in English before continued
    pretraining (step 0), right in X at the last `last_k` no-bridge checkpoints (the fact was
    learned in X), and - transferred - right in English at the last `last_k` bridged ones.
    EN->X swaps the languages. Without a step-0 checkpoint there is no table."""
    frames = []
    for culture in pred["culture"].unique(maintain_order=True):
        g = pred.filter(pl.col("culture") == culture)
        native = _native_lang(pred, culture)
        before = g.filter(pl.col("step") == 0)
        if before.is_empty():
            continue
        before = before.filter(pl.col("setting") == before["setting"].sort()[-1])  # without if present

        def right_last(setting: str, lang: str) -> pl.DataFrame:
            s = g.filter((pl.col("setting") == setting) & (pl.col("lang") == lang))
            steps = sorted(set(s["step"]))[-last_k:]
            return s.filter(pl.col("step").is_in(steps)).group_by("item").agg(pl.col("correct").all().alias("v"))

        for source, target in ((native, "en"), ("en", native)):
            wrong = before.filter(pl.col("lang") == target).select("item", (~pl.col("correct")).alias("wrong_before"))
            t = (
                wrong.join(right_last("without", source).rename({"v": "source_right_without"}), on="item")
                .join(right_last("with", target).rename({"v": "target_right_with"}), on="item")
                .join(right_last("without", target).rename({"v": "target_right_without"}), on="item")
                .with_columns(candidate=pl.col("wrong_before") & pl.col("source_right_without"))
                .with_columns(transferred=pl.col("candidate") & pl.col("target_right_with"))
                .with_columns(culture=pl.lit(culture), direction=pl.lit(f"{source}->{target}"))
            )
            frames.append(t)
    if not frames:
        return pl.DataFrame(schema={"culture": pl.Utf8, "direction": pl.Utf8, "item": pl.Int64})
    cols = ["culture", "direction", "item", "wrong_before", "source_right_without", "target_right_with", "target_right_without", "candidate", "transferred"]
    return pl.concat([f.select(cols) for f in frames]).sort("culture", "direction", "item")
