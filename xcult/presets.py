"""Model architectures by name. Pure data: the launcher writes the chosen preset into
each run's job file, so `training/` builds exactly what the config named.

`qwen2.5-0.5b` is Qwen2.5-0.5B's architecture; the small presets keep its shape
(SwiGLU, RMSNorm, QKV bias, grouped-query attention, RoPE, tied embeddings) at sizes a
CPU trains in minutes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class ModelPreset:
    num_layers: int
    hidden_size: int
    num_attention_heads: int
    num_query_groups: int
    ffn_hidden_size: int
    vocab_size: int = 151936  # Qwen2.5's, padding included
    max_position_embeddings: int = 32768
    rotary_base: float = 1_000_000.0
    norm_epsilon: float = 1e-6
    tie_embeddings: bool = True

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    def to_dict(self) -> dict:
        return asdict(self)

    def parameters(self) -> int:
        """Parameter count (QKV bias only; RMSNorm weights; tied embeddings once)."""
        h, kv = self.hidden_size, self.num_query_groups * self.head_dim
        attn = h * h + 2 * h * kv + (h + 2 * kv) + h * h
        mlp = 3 * h * self.ffn_hidden_size
        layer = attn + mlp + 2 * h
        emb = self.vocab_size * h * (1 if self.tie_embeddings else 2)
        return self.num_layers * layer + h + emb

    def flops_per_token(self, seq_length: int) -> float:
        """Training FLOPs per token (forward + backward = 3x forward): every matmul
        including the LM head, plus attention scores and values over the causal context."""
        h, kv, L = self.hidden_size, self.num_query_groups * self.head_dim, self.num_layers
        matmul = L * (2 * h * h + 2 * 2 * h * kv + 3 * h * self.ffn_hidden_size) + h * self.vocab_size
        attention = L * seq_length * h  # QK^T and AV multiply-adds over a causal (half) context
        return 3 * 2 * (matmul + attention)


PRESETS = {
    "qwen2.5-0.5b": ModelPreset(num_layers=24, hidden_size=896, num_attention_heads=14, num_query_groups=2, ffn_hidden_size=4864),
    # CPU presets (head dim 32 / 64, as vLLM's CPU kernels require).
    "tiny": ModelPreset(num_layers=2, hidden_size=128, num_attention_heads=4, num_query_groups=2, ffn_hidden_size=512, max_position_embeddings=4096),
    "small": ModelPreset(num_layers=4, hidden_size=256, num_attention_heads=4, num_query_groups=2, ffn_hidden_size=1024, max_position_embeddings=4096),
}
