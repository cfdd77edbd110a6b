"""`xcult export`: a Megatron-Core checkpoint of this project as a Hugging Face Qwen2
checkpoint (config.json, model.safetensors, tokenizer.json) that transformers and vLLM load.

Megatron keeps Q, K and V in one matrix, grouped per query group as
[q_1 .. q_{h/g}, k, v] blocks of head_dim rows, and SwiGLU's gate and up projections in
one matrix, gate first; both are split here.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import torch

from xcult.checkpoints import load_megatron
from xcult.io import replace_dir


def hf_state_dict(model, arch: dict) -> dict[str, torch.Tensor]:
    sd = {k: v for k, v in model.state_dict().items() if "_extra_state" not in k}
    h, heads, groups = arch["hidden_size"], arch["num_attention_heads"], arch["num_query_groups"]
    d, per = h // heads, heads // groups
    out = {"model.embed_tokens.weight": sd["embedding.word_embeddings.weight"], "model.norm.weight": sd["decoder.final_layernorm.weight"]}
    if not arch["tie_embeddings"]:
        out["lm_head.weight"] = sd["output_layer.weight"]
    for i in range(arch["num_layers"]):
        m, p = f"decoder.layers.{i}.", f"model.layers.{i}."
        qkv_w = sd[m + "self_attention.linear_qkv.weight"].view(groups, per + 2, d, h)
        qkv_b = sd[m + "self_attention.linear_qkv.bias"].view(groups, per + 2, d)
        for name, sl in (("q", slice(0, per)), ("k", slice(per, per + 1)), ("v", slice(per + 1, per + 2))):
            out[f"{p}self_attn.{name}_proj.weight"] = qkv_w[:, sl].reshape(-1, h)
            out[f"{p}self_attn.{name}_proj.bias"] = qkv_b[:, sl].reshape(-1)
        out[p + "self_attn.o_proj.weight"] = sd[m + "self_attention.linear_proj.weight"]
        gate, up = sd[m + "mlp.linear_fc1.weight"].chunk(2, dim=0)
        out[p + "mlp.gate_proj.weight"], out[p + "mlp.up_proj.weight"] = gate, up
        out[p + "mlp.down_proj.weight"] = sd[m + "mlp.linear_fc2.weight"]
        # The local layer spec keeps norms as modules, the Transformer Engine spec fuses them into the linears.
        out[p + "input_layernorm.weight"] = sd.get(m + "input_layernorm.weight", sd.get(m + "self_attention.linear_qkv.layer_norm_weight"))
        out[p + "post_attention_layernorm.weight"] = sd.get(m + "pre_mlp_layernorm.weight", sd.get(m + "mlp.linear_fc1.layer_norm_weight"))
    return {k: v.detach().contiguous().clone() for k, v in out.items()}


def export(checkpoint: Path, out: Path, dtype: str = "float32") -> Path:
    """Writes the HF checkpoint to `out` atomically (a temporary directory renamed into place)."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    model, job = load_megatron(checkpoint)
    arch = job["arch"]
    config = Qwen2Config(
        vocab_size=arch["vocab_size"],
        hidden_size=arch["hidden_size"],
        intermediate_size=arch["ffn_hidden_size"],
        num_hidden_layers=arch["num_layers"],
        num_attention_heads=arch["num_attention_heads"],
        num_key_value_heads=arch["num_query_groups"],
        max_position_embeddings=arch["max_position_embeddings"],
        rope_theta=arch["rotary_base"],
        rms_norm_eps=arch["norm_epsilon"],
        tie_word_embeddings=arch["tie_embeddings"],
        bos_token_id=job["eod"],
        eos_token_id=job["eod"],
        torch_dtype=dtype,
    )
    hf = Qwen2ForCausalLM(config)
    missing, unexpected = hf.load_state_dict(hf_state_dict(model, arch), strict=False)
    missing = [k for k in missing if not (k == "lm_head.weight" and arch["tie_embeddings"])]
    if missing or unexpected:
        raise RuntimeError(f"export mapping is incomplete: missing {missing}, unexpected {unexpected}")
    hf = hf.to(getattr(torch, dtype))
    tmp = out.with_name(f".{out.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    hf.save_pretrained(tmp)
    shutil.copyfile(job["tokenizer"], tmp / "tokenizer.json")
    (tmp / "xcult_source.json").write_text(json.dumps({"checkpoint": str(checkpoint.resolve()), "run": job["name"]}, indent=2))
    replace_dir(tmp, out)
    return out
