"""lm-evaluation-harness interoperability: probes as lm-eval tasks, xcult's scores as
lm-eval result and sample logs, and sample logs (xcult's or lm-eval's) read back.

One task per culture and question language, `xcult_<culture>_<lang>`: a multiple-choice
task whose choices are the question with each option in the blank, after an empty
context, so lm-eval conditions on the EOS token (Qwen has no BOS) as the paper does.
lm-eval's per-choice log-likelihood is then the filled sentence's total log-probability:

    lm-eval `acc`       == xcult metric `sum`       (argmax of the total log-likelihood)
    lm-eval `acc_norm`  == xcult metric `per_char`  (divided by the sentence's characters)
    the paper's `mean` (per token) has no lm-eval twin; xcult logs it as `acc_mean`.

The sample logs hold, per question, each choice's `[log-likelihood, is_greedy]` as
lm-eval writes them, so `xcult compare` (and lm-eval's own tooling) reads both.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
import polars as pl

from xcult.errors import InputError, MissingPathError
from xcult.io import replace_dir, write_text_atomic
from xcult.probes import Culture, ProbeItem

GROUP = "xcult"
# xcult metric -> the sample-log key of accuracy under it (lm-eval's own names where one exists).
ACC_KEY = {"sum": "acc", "per_char": "acc_norm", "mean": "acc_mean", "answer_sum": "acc_answer_sum"}


def task_name(culture: str, lang: str) -> str:
    return f"{GROUP}_{culture}_{lang}"


def _doc(item: ProbeItem, index: int, culture: str, lang: str) -> dict:
    return {
        "culture": culture, "lang": lang, "item": index, "question": item.question, "options": item.options,
        "choices": [item.fill(o) for o in item.options], "answer": item.answer_index,
    }


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def write_tasks(cultures: list[Culture], out: Path) -> list[str]:
    """Task YAMLs (one per culture x question language, and a group `xcult`) and their
    JSONL data under `out`; returns the task names. The YAMLs name their data by
    absolute path, as lm-eval resolves `data_files` from its working directory."""
    data = out / "data"
    data.mkdir(parents=True, exist_ok=True)
    names = []
    for c in cultures:
        for lang in ("en", c.lang):
            name = task_name(c.name, lang)
            rows = [_doc(it, idx, c.name, lang) for idx, it in zip(c.index, c.items(lang))]
            write_text_atomic(data / f"{name}.jsonl", "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
            write_text_atomic(
                out / f"{name}.yaml",
                f"task: {name}\n"
                "dataset_path: json\n"
                f"dataset_kwargs:\n  data_files:\n    test: {json.dumps(str((data / f'{name}.jsonl').resolve()))}\n"
                "test_split: test\n"
                "output_type: multiple_choice\n"
                # an empty context: lm-eval conditions each choice on the prefix token (EOS for Qwen)
                'doc_to_text: ""\n'
                'doc_to_choice: "{{choices}}"\n'
                "doc_to_target: answer\n"
                'target_delimiter: ""\n'
                "metric_list:\n"
                "  - metric: acc\n    aggregation: mean\n    higher_is_better: true\n"
                "  - metric: acc_norm\n    aggregation: mean\n    higher_is_better: true\n"
                "metadata:\n  version: 1.0\n",
            )
            names.append(name)
    write_text_atomic(out / f"{GROUP}.yaml", f"group: {GROUP}\ntask:\n" + "".join(f"  - {n}\n" for n in names) + "metadata:\n  version: 1.0\n")
    return names


def _samples(rows: pl.DataFrame, items: dict[int, ProbeItem], culture: str, lang: str, metric: str) -> list[dict]:
    out = []
    for doc_id, r in enumerate(rows.sort("item").iter_rows(named=True)):
        item = items[r["item"]]
        doc = _doc(item, r["item"], culture, lang)
        ll = np.array(r["loglik"])
        lengths = np.array([len(c) for c in doc["choices"]], dtype=float)
        gold = doc["answer"]
        resps = [[str(float(x)), str(bool(g))] for x, g in zip(r["loglik"], r["greedy"])]
        sample = {
            "doc_id": doc_id,
            "doc": doc,
            "target": str(gold),
            "arguments": {f"gen_args_{k}": {"arg_0": "", "arg_1": c} for k, c in enumerate(doc["choices"])},
            "resps": [[x] for x in resps],
            "filtered_resps": resps,
            "filter": "none",
            "metrics": ["acc", "acc_norm"] + ([ACC_KEY[metric]] if ACC_KEY[metric] not in ("acc", "acc_norm") else []),
            "doc_hash": _sha(json.dumps(doc, indent=2, ensure_ascii=False)),
            "prompt_hash": _sha(""),
            "target_hash": _sha(str(gold)),
            # lm-eval's rules on the log-likelihoods (first maximum wins)...
            "acc": float(np.argmax(ll) == gold),
            "acc_norm": float(np.argmax(ll / lengths) == gold),
        }
        # ...and the prediction under xcult's configured metric
        sample[ACC_KEY[metric]] = float(r["correct"])
        out.append(sample)
    return out


def write_logs(out: Path, pred: pl.DataFrame, cultures: list[Culture], metric: str, source: dict) -> Path:
    """lm-eval's `results_<time>.json` and `samples_<task>_<time>.jsonl` for one model
    (one checkpoint's item rows, every culture and language) in the directory `out`,
    replaced whole (written beside it, then renamed into place)."""
    stamp = datetime.datetime.now().isoformat().replace(":", "-")
    tmp = out.with_name(f".{out.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    results, n_samples, configs = {}, {}, {}
    keys = ["acc", "acc_norm"] + ([ACC_KEY[metric]] if ACC_KEY[metric] not in ("acc", "acc_norm") else [])
    by_name = {c.name: c for c in cultures}
    for (culture, lang), rows in pred.group_by("culture", "lang", maintain_order=True):
        c = by_name[culture]
        name = task_name(culture, lang)
        samples = _samples(rows, dict(zip(c.index, c.items(lang))), culture, lang, metric)
        write_text_atomic(tmp / f"samples_{name}_{stamp}.jsonl", "".join(json.dumps(s, ensure_ascii=False) + "\n" for s in samples))
        entry = {"name": name, "alias": name, "sample_len": len(samples)}
        for k in keys:
            x = np.array([s[k] for s in samples])
            entry[f"{k},none"] = float(x.mean())
            entry[f"{k}_stderr,none"] = float(x.std(ddof=1) / np.sqrt(len(x))) if len(x) > 1 else float("nan")
        results[name] = entry
        n_samples[name] = {"original": len(samples), "effective": len(samples)}
        configs[name] = {"task": name, "output_type": "multiple_choice", "doc_to_text": "", "target_delimiter": ""}
    doc = {
        "results": results,
        "group_subtasks": {name: [] for name in results},
        "configs": configs,
        "versions": {name: 1.0 for name in results},
        "n-shot": {name: 0 for name in results},
        "higher_is_better": {name: {k: True for k in keys} for name in results},
        "n-samples": n_samples,
        "config": {"model": "xcult", "model_args": source.get("checkpoint"), "batch_size": None, "limit": None},
        "date": datetime.datetime.now().timestamp(),
        "model_source": "xcult",
        "model_name": str(source.get("checkpoint")),
        "xcult": {"metric": metric, **source},
    }
    write_text_atomic(tmp / f"results_{stamp}.json", json.dumps(doc, indent=2, ensure_ascii=False))
    replace_dir(tmp, out)
    return out


def read_samples(path: Path) -> pl.DataFrame:
    """Per question results from lm-eval-format sample logs: a `samples_*.jsonl` file or a
    directory holding them (the newest file per task). Columns: task, doc_id, key (the
    document's hash) and one boolean column per accuracy key the logs hold (`acc`,
    `acc_norm`, xcult's `acc_mean` ...; null where a sample lacks it)."""
    if path.is_dir():
        files: dict[str, Path] = {}
        for f in sorted(path.rglob("samples_*.jsonl")):
            task = f.name[len("samples_") : f.name.rfind("_")]
            if task not in files or f.name > files[task].name:
                files[task] = f
        if not files:
            raise MissingPathError(f"{path} holds no samples_*.jsonl (lm-eval --log_samples, or xcult eval's eval/lm_eval)", str(path))
    elif path.is_file():
        files = {path.name[len("samples_") : path.name.rfind("_")]: path}
    else:
        raise MissingPathError(f"{path} does not exist", str(path))
    rows = []
    for task, f in sorted(files.items()):
        with open(f, encoding="utf-8") as fh:
            for n, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    s = json.loads(line)
                    rows.append({"task": task, "doc_id": int(s["doc_id"]), "key": _item_key(s), **{k: bool(v) for k, v in s.items() if k.startswith("acc")}})
                except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
                    raise InputError(f"{f}:{n}: not an lm-eval sample ({e})", str(f), n) from None
    if not rows:
        raise InputError(f"{path}: the sample logs hold no samples", str(path))
    return pl.DataFrame(rows, infer_schema_length=None)


def _item_key(sample: dict) -> str:
    """What pairs a question across two logs: the document's hash, as lm-eval computes it."""
    return sample.get("doc_hash") or _sha(json.dumps(sample["doc"], indent=2, ensure_ascii=False))

