"""Training batches from a prep output (.bin/.idx) through Megatron-Core's GPTDataset.

The sample at global index i is fixed by the dataset's seeded shuffle, and step s on
data-parallel rank r reads indices s * G + r * G / D + [0, G / D): the data order is a
function of the step alone, which is what makes resume exact.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import torch
from megatron.core.datasets.blended_megatron_dataset_builder import BlendedMegatronDatasetBuilder
from megatron.core.datasets.gpt_dataset import GPTDataset, GPTDatasetConfig

KEYS = ("tokens", "labels", "loss_mask", "position_ids")


@dataclass(frozen=True)
class TokenIds:
    """What GPTDataset needs of a tokenizer: the vocabulary size and the EOD id."""

    vocab_size: int
    eod: int

    @property
    def unique_identifiers(self) -> dict:  # GPTDataset hashes its config, tokenizer included
        return {"class": "TokenIds", "vocab_size": self.vocab_size, "eod": self.eod}


def build_dataset(blend: list[tuple[str, float]], num_samples: int, seq_length: int, seed: int, vocab_size: int, eod: int, cache_dir: str):
    """One prefix, or a weighted blend of prefixes (continued pretraining with English
    replay): Megatron's BlendedDataset draws each sample's source by weight, seeded."""
    prefixes = [p for p, _ in blend]
    if len(blend) == 1:
        splits = {"blend": (prefixes, None), "split": "100,0,0"}
    else:  # weights need a size for every split named, so only the training split is
        splits = {"blend_per_split": [(prefixes, [w for _, w in blend]), None, None]}
    config = GPTDatasetConfig(
        random_seed=seed,
        sequence_length=seq_length,
        **splits,
        path_to_cache=cache_dir,
        tokenizer=TokenIds(vocab_size, eod),
        reset_position_ids=False,
        reset_attention_mask=False,
        eod_mask_loss=False,
        create_attention_mask=False,  # causal attention needs no mask tensor
        mid_level_dataset_surplus=0.005,
    )
    train, _, _ = BlendedMegatronDatasetBuilder(GPTDataset, [num_samples, None, None], lambda: True, config).build()
    return train


def step_batches(dataset, step: int, global_batch: int, micro_batch: int, dp_rank: int, dp_size: int, device) -> Iterator[dict]:
    """The micro-batches of one optimizer step for this data-parallel rank."""
    per_rank = global_batch // dp_size
    base = step * global_batch + dp_rank * per_rank
    for k in range(per_rank // micro_batch):
        samples = [dataset[base + k * micro_batch + j] for j in range(micro_batch)]
        yield {key: torch.stack([s[key] for s in samples]).to(device) for key in KEYS}
