import pytest

from xcult.presets import PRESETS


def test_qwen25_05b_parameter_count():
    # Qwen2.5-0.5B: 494,032,768 parameters with tied embeddings.
    assert PRESETS["qwen2.5-0.5b"].parameters() == 494_032_768


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_megatron_model_has_the_preset_parameter_count(name):
    pytest.importorskip("megatron.core")
    import torch

    from training.model import build_model
    from training.runtime import init_single_process

    init_single_process()
    with torch.device("meta"):  # shapes only: the 0.5B model allocates nothing
        model = build_model(PRESETS[name].to_dict(), 2048 if name == "qwen2.5-0.5b" else 256)
    assert sum(p.numel() for p in model.parameters()) == PRESETS[name].parameters()


def test_flops_per_token_by_hand():
    p = PRESETS["tiny"]  # L=2, h=128, kv=2x32=64, ffn=512, V=151936
    matmul = 2 * (2 * 128 * 128 + 2 * 2 * 128 * 64 + 3 * 128 * 512) + 128 * 151936
    attention = 2 * 64 * 128
    assert p.flops_per_token(64) == 6 * (matmul + attention)
    assert p.head_dim in (32, 64) and PRESETS["small"].head_dim in (32, 64)
