"""`xcult import`: a Hugging Face Qwen2 checkpoint (a local directory or a hub id) as a
Megatron-Core run directory that continued pretraining starts from (`train.init_from`);
the inverse of `xcult export`.

The directory looks like a finished xcult run: job.json (the architecture, the EOS id,
the tokenizer), tokenizer.json, `iter_0000000/` (the weights, with their file listing)
and done.json, so export, eval and `xcult train --stage ct` read it as they read a run.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import torch

from xcult.errors import InputError
from xcult.io import replace_dir
from xcult.presets import ModelPreset

SUPPORTED = "qwen2"


def arch_of(config, source: str) -> dict:
    """The preset dict of an HF Qwen2 config; anything training/model.py cannot build is an
    error naming the source."""
    if config.model_type != SUPPORTED:
        raise InputError(f"{source}: model_type {config.model_type!r}; xcult builds Qwen2-shaped models only ({SUPPORTED!r})", source)
    if config.hidden_act != "silu":
        raise InputError(f"{source}: hidden_act {config.hidden_act!r}; the Qwen2 shape xcult trains is SwiGLU (silu)", source)
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    if head_dim * config.num_attention_heads != config.hidden_size:
        raise InputError(f"{source}: head_dim {head_dim} x {config.num_attention_heads} heads != hidden_size {config.hidden_size}", source)
    return ModelPreset(
        num_layers=config.num_hidden_layers,
        hidden_size=config.hidden_size,
        num_attention_heads=config.num_attention_heads,
        num_query_groups=config.num_key_value_heads,
        ffn_hidden_size=config.intermediate_size,
        vocab_size=config.vocab_size,
        max_position_embeddings=config.max_position_embeddings,
        rotary_base=float(config.rope_theta if hasattr(config, "rope_theta") else config.rope_parameters["rope_theta"]),
        norm_epsilon=config.rms_norm_eps,
        tie_embeddings=bool(config.tie_word_embeddings),
    ).to_dict()


def megatron_state_dict(hf: dict[str, torch.Tensor], arch: dict) -> dict[str, torch.Tensor]:
    """HF Qwen2 names and layouts -> the local layer spec's (fused QKV grouped per query
    group as [q_1 .. q_{h/g}, k, v], gate and up stacked in fc1); export.hf_state_dict
    is the inverse."""
    h, heads, groups = arch["hidden_size"], arch["num_attention_heads"], arch["num_query_groups"]
    d, per = h // heads, heads // groups
    out = {"embedding.word_embeddings.weight": hf["model.embed_tokens.weight"], "decoder.final_layernorm.weight": hf["model.norm.weight"]}
    if not arch["tie_embeddings"]:
        out["output_layer.weight"] = hf["lm_head.weight"]
    for i in range(arch["num_layers"]):
        p, m = f"model.layers.{i}.", f"decoder.layers.{i}."
        a = p + "self_attn."
        out[m + "self_attention.linear_qkv.weight"] = torch.cat(
            [hf[a + "q_proj.weight"].view(groups, per, d, h), hf[a + "k_proj.weight"].view(groups, 1, d, h), hf[a + "v_proj.weight"].view(groups, 1, d, h)], dim=1
        ).reshape(-1, h)
        out[m + "self_attention.linear_qkv.bias"] = torch.cat(
            [hf[a + "q_proj.bias"].view(groups, per, d), hf[a + "k_proj.bias"].view(groups, 1, d), hf[a + "v_proj.bias"].view(groups, 1, d)], dim=1
        ).reshape(-1)
        out[m + "self_attention.linear_proj.weight"] = hf[a + "o_proj.weight"]
        out[m + "mlp.linear_fc1.weight"] = torch.cat([hf[p + "mlp.gate_proj.weight"], hf[p + "mlp.up_proj.weight"]], dim=0)
        out[m + "mlp.linear_fc2.weight"] = hf[p + "mlp.down_proj.weight"]
        out[m + "input_layernorm.weight"] = hf[p + "input_layernorm.weight"]
        out[m + "pre_mlp_layernorm.weight"] = hf[p + "post_attention_layernorm.weight"]
    return {k: v.detach().float().contiguous().clone() for k, v in out.items()}


def _tokenizer_json(source: str, dest: Path) -> None:
    """The source's tokenizer.json: beside the weights, or from the hub for a hub id."""
    local = Path(source) / "tokenizer.json"
    if local.is_file():
        shutil.copyfile(local, dest)
        return
    if Path(source).is_dir():
        raise InputError(f"{source} has no tokenizer.json (xcult reads the fast tokenizer's file)", str(local))
    from huggingface_hub import hf_hub_download

    shutil.copyfile(hf_hub_download(source, "tokenizer.json"), dest)


def import_hf(source: str, out: Path) -> Path:
    """Writes the run directory `out` atomically (a temporary directory renamed into place)."""
    from tokenizers import Tokenizer
    from transformers import AutoConfig, AutoModelForCausalLM

    from training import checkpoint
    from training.model import build_model
    from training.runtime import init_single_process

    config = AutoConfig.from_pretrained(source)
    arch = arch_of(config, source)
    eod = config.eos_token_id[0] if isinstance(config.eos_token_id, list) else config.eos_token_id
    tmp = out.with_name(f".{out.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    _tokenizer_json(source, tmp / "tokenizer.json")
    if eod is None or Tokenizer.from_file(str(tmp / "tokenizer.json")).id_to_token(eod) is None:
        raise InputError(f"{source}: eos_token_id {eod} is not a token of its tokenizer.json", source)

    hf = AutoModelForCausalLM.from_pretrained(source, torch_dtype=torch.float32)
    init_single_process()
    model = build_model(arch, arch["max_position_embeddings"], bf16=False, use_te=False)
    missing, unexpected = model.load_state_dict(megatron_state_dict(hf.state_dict(), arch), strict=False)
    missing = [k for k in missing if "_extra_state" not in k and not (k == "output_layer.weight" and arch["tie_embeddings"])]
    if missing or unexpected:
        raise RuntimeError(f"import mapping is incomplete: missing {missing}, unexpected {unexpected}")
    del hf
    checkpoint.save(tmp, 0, model)
    job = {
        "name": out.name,
        "stage": "import",
        "source": source,
        "arch": arch,
        "seq_length": arch["max_position_embeddings"],
        "eod": int(eod),
        "tokenizer": str(out.resolve() / "tokenizer.json"),
    }
    (tmp / "job.json").write_text(json.dumps(job, indent=2))
    # The weights' digest (of the checkpoint's file listing, which holds every file's
    # SHA-256): runs continued from this directory go stale when it is imported anew.
    listing = (tmp / "iter_0000000" / checkpoint.FILES).read_bytes()
    done = {"steps": 0, "imported_from": source, "parameters": sum(p.numel() for p in model.parameters()), "weights_sha256": hashlib.sha256(listing).hexdigest()}
    (tmp / "done.json").write_text(json.dumps(done, indent=2))
    replace_dir(tmp, out)
    return out
