"""Hugging Face causal LMs (what `xcult export` writes, or any hub/local checkpoint)."""

from __future__ import annotations

import shutil
from pathlib import Path

import torch


class HFCausalLM:
    def __init__(self, path: str | Path, device: torch.device, dtype: torch.dtype):
        from safetensors import SafetensorError
        from transformers import AutoModelForCausalLM

        from xcult.errors import InputError

        self.device, self.dtype = device, dtype
        try:
            model = AutoModelForCausalLM.from_pretrained(str(path), dtype=dtype)
        except (OSError, ValueError, RuntimeError, SafetensorError) as e:  # truncated or foreign weight files
            weights = sorted(Path(path).glob("*.safetensors")) or [Path(path)]
            raise InputError(f"checkpoint {path} cannot be loaded ({type(e).__name__}: {e}); its weights: {', '.join(map(str, weights))}", str(weights[0])) from None
        self.model = model.to(device).eval()

    def hidden_states(self, ids: torch.Tensor) -> torch.Tensor:
        # No attention mask: right padding under the causal mask leaves real positions exact.
        return self.model.base_model(input_ids=ids, use_cache=False).last_hidden_state

    def hidden_states_packed(self, ids: torch.Tensor, positions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """States of packed rows [B, T]: several sequences share a row, each token at its
        own `positions` and attending only where the boolean `mask` [B, 1, T, T] allows
        (exact: a masked key gets zero weight, so no token sees another sequence)."""
        return self.model.base_model(input_ids=ids, position_ids=positions, attention_mask=mask, use_cache=False).last_hidden_state

    def output_weight(self) -> torch.Tensor:
        return self.model.get_output_embeddings().weight


def random_shape(hidden: int = 128, layers: int = 2, preset: str | None = None) -> dict:
    """`write_random_qwen2`'s shape arguments: a model preset's (`xcult/presets.py`), or
    hidden/layers with 32-dim heads and a 4 x hidden MLP."""
    if preset is None:
        return {"hidden": hidden, "layers": layers, "heads": hidden // 32, "kv_heads": max(1, hidden // 64), "intermediate": 4 * hidden}
    from xcult.presets import PRESETS

    p = PRESETS[preset]
    return {"hidden": p.hidden_size, "layers": p.num_layers, "heads": p.num_attention_heads, "kv_heads": p.num_query_groups, "intermediate": p.ffn_hidden_size}


def write_random_qwen2(
    out: Path, tokenizer_json: Path, layers: int = 2, hidden: int = 128, heads: int = 4, kv_heads: int = 2, seed: int = 0, intermediate: int | None = None
) -> Path:
    """A randomly initialised Qwen2 checkpoint with the full Qwen vocabulary (tests,
    benchmarks); the MLP is 4 x hidden unless `intermediate` says otherwise."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(seed)
    cfg = Qwen2Config(
        vocab_size=151936,
        hidden_size=hidden,
        intermediate_size=intermediate or 4 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        max_position_embeddings=2048,
        tie_word_embeddings=True,
        bos_token_id=151643,
        eos_token_id=151643,
    )
    model = Qwen2ForCausalLM(cfg)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    shutil.copyfile(tokenizer_json, out / "tokenizer.json")
    return out
