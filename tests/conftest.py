from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROBES = ROOT.parent / "shared" / "data" / "probes"


def write_config(path: Path, inputs: Path, out: Path, seed: int = 1234, extra: str = "", langs: tuple[str, ...] = ("zh", "bo")) -> Path:
    """A small config over `xcult.corpus.sample` files in `inputs`."""
    body = f"""
[experiment]
name = "t"
out_dir = "{out}"
seed = {seed}

[prep]
on_error = "skip"
{extra}

[prep.english]
paths = ["{inputs / 'en.jsonl'}"]
min_chars = 20
"""
    if "zh" in langs:
        body += f"""
[prep.languages.zh]
mono_paths = ["{inputs / 'zh_mono.jsonl.gz'}"]
pair_paths = ["{inputs / 'zh_en.tsv'}"]
budget_tokens = 40_000
"""
    if "bo" in langs:
        body += f"""
[prep.languages.bo]
mono_paths = ["{inputs / 'bo_mono.txt'}"]
mono_format = "text"
pair_paths = ["{inputs / 'bo_pairs.en'}"]
pair_format = "aligned"
pair_xx_paths = ["{inputs / 'bo_pairs.bo'}"]
budget_tokens = 40_000
"""
    path.write_text(body, encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def sample_inputs(tmp_path_factory) -> Path:
    from xcult.corpus.sample import write_sample

    d = tmp_path_factory.mktemp("inputs")
    write_sample(d, seed=0)
    return d


@pytest.fixture(scope="session")
def built(tmp_path_factory, sample_inputs):
    """A finished small prep run: (config, stats by unit)."""
    from xcult.config import load_config
    from xcult.corpus.stage import run_prep

    d = tmp_path_factory.mktemp("built")
    cfg = load_config(write_config(d / "c.toml", sample_inputs, d / "run"))
    stats = run_prep(cfg, progress=False)
    return cfg, stats


@pytest.fixture(scope="session")
def qwen_tokenizer_json(tmp_path_factory) -> Path:
    from xcult.tokenizer import qwen25_tokenizer

    return qwen25_tokenizer(tmp_path_factory.mktemp("tok"))


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory, qwen_tokenizer_json) -> Path:
    """A random two-layer Qwen2 with the full Qwen vocabulary, saved as an HF checkpoint."""
    pytest.importorskip("transformers")
    from xcult.eval.hf import write_random_qwen2

    return write_random_qwen2(tmp_path_factory.mktemp("tiny") / "model", qwen_tokenizer_json, hidden=64, heads=2, kv_heads=1)
