"""A Qwen2.5-shaped GPTModel from an architecture dict (a preset from xcult/presets.py)."""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F
from megatron.core.models.gpt.gpt_layer_specs import get_gpt_layer_local_spec
from megatron.core.models.gpt.gpt_model import GPTModel
from megatron.core.transformer.transformer_config import TransformerConfig


def transformer_config(arch: dict, bf16: bool, use_te: bool) -> TransformerConfig:
    fused = use_te  # the fused kernels need CUDA; on CPU every fusion is off
    return TransformerConfig(
        num_layers=arch["num_layers"],
        hidden_size=arch["hidden_size"],
        num_attention_heads=arch["num_attention_heads"],
        num_query_groups=arch["num_query_groups"],
        ffn_hidden_size=arch["ffn_hidden_size"],
        kv_channels=arch["hidden_size"] // arch["num_attention_heads"],
        normalization="RMSNorm",
        layernorm_epsilon=arch["norm_epsilon"],
        gated_linear_unit=True,  # SwiGLU
        activation_func=F.silu,
        add_bias_linear=False,
        add_qkv_bias=True,
        hidden_dropout=0.0,
        attention_dropout=0.0,
        init_method_std=0.02,
        bf16=bf16,
        params_dtype=torch.bfloat16 if bf16 else torch.float32,
        pipeline_dtype=torch.bfloat16 if bf16 else torch.float32,
        use_cpu_initialization=not torch.cuda.is_available(),
        bias_activation_fusion=fused,
        bias_dropout_fusion=fused,
        apply_rope_fusion=fused,
        masked_softmax_fusion=fused,
        persist_layer_norm=fused,
        gradient_accumulation_fusion=False,
    )


def layer_spec(use_te: bool):
    if use_te:
        from megatron.core.models.gpt.gpt_layer_specs import get_gpt_layer_with_transformer_engine_spec

        return get_gpt_layer_with_transformer_engine_spec()
    return get_gpt_layer_local_spec(normalization="RMSNorm")


def build_model(arch: dict, seq_length: int, bf16: bool = False, use_te: bool = False) -> GPTModel:
    # Megatron-Core 0.19 logs a deprecation notice for every GPTModel built (HybridModel is
    # its successor); an eval sweep builds one per checkpoint.
    logging.getLogger("megatron.core.models.gpt.gpt_model").setLevel(logging.ERROR)
    return GPTModel(
        config=transformer_config(arch, bf16, use_te),
        transformer_layer_spec=layer_spec(use_te),
        vocab_size=arch["vocab_size"],
        max_sequence_length=seq_length,
        position_embedding_type="rope",
        rotary_base=int(arch["rotary_base"]),
        share_embeddings_and_output_weights=arch["tie_embeddings"],
    )
