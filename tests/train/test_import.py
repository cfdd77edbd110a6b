"""`xcult import`: an HF Qwen2 checkpoint as a Megatron run, the round trip through
`xcult export`, and continued pretraining from it (train.init_from)."""

import json

import pytest

pytest.importorskip("megatron.core")
pytest.importorskip("transformers")
import torch  # noqa: E402
from click.testing import CliRunner  # noqa: E402

from tests.train.test_training import train_config, xcult_train  # noqa: E402
from xcult.cli import main  # noqa: E402
from xcult.presets import PRESETS  # noqa: E402

IDS = torch.tensor([[151643, 785, 6722, 315, 9625, 374, 12095, 13, 99487, 100, 1879, 3837, 104307]])


def released_model(out, tokenizer_json, arch, tied=True, seed=0):
    """A random Qwen2 in HF's format, the way a released checkpoint is: every weight,
    bias and norm non-trivial (HF initialises biases to 0 and norms to 1, which would
    hide a swapped bias or norm)."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(seed)
    cfg = Qwen2Config(
        vocab_size=arch.vocab_size, hidden_size=arch.hidden_size, intermediate_size=arch.ffn_hidden_size,
        num_hidden_layers=arch.num_layers, num_attention_heads=arch.num_attention_heads, num_key_value_heads=arch.num_query_groups,
        max_position_embeddings=arch.max_position_embeddings, rope_theta=arch.rotary_base, rms_norm_eps=arch.norm_epsilon,
        tie_word_embeddings=tied, bos_token_id=151643, eos_token_id=151643,
    )
    model = Qwen2ForCausalLM(cfg)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                p.normal_(0, 0.5)
            elif "norm" in name:
                p.uniform_(0.5, 1.5)
    model.save_pretrained(out)
    (out / "tokenizer.json").write_bytes(tokenizer_json.read_bytes())
    return out, model.eval()


def megatron_logits(ckpt):
    from xcult.checkpoints import load_megatron

    mg, _ = load_megatron(ckpt)
    with torch.no_grad():
        return mg(IDS, torch.arange(IDS.shape[1])[None], None)


@pytest.mark.parametrize("tied", [True, False])
def test_import_then_export_gives_the_released_logits(tmp_path, qwen_tokenizer_json, tied):
    from transformers import AutoModelForCausalLM

    arch = PRESETS["tiny"]
    src, hf = released_model(tmp_path / "released", qwen_tokenizer_json, arch, tied)
    r = CliRunner().invoke(main, ["import", str(src), str(tmp_path / "imported")])
    assert r.exit_code == 0, r.output
    run = tmp_path / "imported"
    job = json.loads((run / "job.json").read_text())
    assert job["arch"] == {**arch.to_dict(), "tie_embeddings": tied} and job["eod"] == 151643
    with torch.no_grad():
        want = hf(IDS).logits
    # the Megatron model itself computes the released model's function...
    got = megatron_logits(run / "iter_0000000")
    assert torch.allclose(got, want, atol=1e-4), (got - want).abs().max()
    assert want.std() > 0.1  # logits that differ between positions and ids: the comparison means something
    # ...and exporting it again gives the same HF model back
    r = CliRunner().invoke(main, ["export", str(run / "iter_0000000"), str(tmp_path / "back")])
    assert r.exit_code == 0, r.output
    back = AutoModelForCausalLM.from_pretrained(tmp_path / "back").eval()
    with torch.no_grad():
        again = back(IDS).logits
    assert torch.allclose(again, want, atol=1e-5), (again - want).abs().max()
    a, b = hf.state_dict(), back.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a if not (tied and k == "lm_head.weight"))


def test_a_model_xcult_cannot_build_is_named(tmp_path, qwen_tokenizer_json):
    from transformers import LlamaConfig

    src = tmp_path / "llama"
    src.mkdir()
    LlamaConfig(vocab_size=1000, hidden_size=64, num_hidden_layers=1, num_attention_heads=2).save_pretrained(src)
    r = CliRunner().invoke(main, ["import", str(src), str(tmp_path / "out")])
    assert r.exit_code == 2 and "model_type 'llama'" in r.output and str(src) in r.output
    assert not (tmp_path / "out").exists()


def test_continued_pretraining_starts_from_the_imported_model(tmp_path, sample_inputs, built, qwen_tokenizer_json):
    from xcult.checkpoints import load_megatron
    from xcult.train import launch
    from xcult.config import load_config
    from xcult.train.export import hf_state_dict

    src, hf = released_model(tmp_path / "released", qwen_tokenizer_json, PRESETS["tiny"], seed=3)
    imported = tmp_path / "imported"
    assert CliRunner().invoke(main, ["import", str(src), str(imported)]).exit_code == 0
    path = train_config(tmp_path, sample_inputs, built, "adapt", more=f'init_from = "{imported}"')
    cfg = load_config(path)
    assert [r.name for r in launch.runs(cfg)] == ["ct-zh-with", "ct-zh-without"]
    r = CliRunner().invoke(main, ["train", str(path), "--stage", "pretrain"])
    assert r.exit_code == 2 and "train.init_from" in r.output

    xcult_train(path, "--stage", "ct", "--lang", "zh", "--bridges", "with", "--stop-after", "3")
    ct = tmp_path / "adapt" / "ct-zh-with"
    a, job = load_megatron(ct / "iter_0000000")
    b, _ = load_megatron(imported / "iter_0000000")
    sa, sb = hf_state_dict(a, job["arch"]), hf_state_dict(b, job["arch"])
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert job["init_from"] == str(imported / "iter_0000000")
    loss = [json.loads(x)["loss"] for x in (ct / "metrics.jsonl").read_text().splitlines()]
    assert len(loss) == 3 and all(x == x for x in loss)
    # re-importing changes the run it continued: the run is stale, not silently kept
    released_model(tmp_path / "released", qwen_tokenizer_json, PRESETS["tiny"], seed=4)
    assert CliRunner().invoke(main, ["import", str(src), str(imported)]).exit_code == 0
    assert launch.run_status(cfg, launch.find_run(cfg, "ct", "zh", "with")).state == "stale"


def test_init_from_of_another_shape_or_tokenizer_is_a_config_error(tmp_path, sample_inputs, built, qwen_tokenizer_json):
    from xcult.presets import ModelPreset

    src, _ = released_model(tmp_path / "released", qwen_tokenizer_json, ModelPreset(num_layers=1, hidden_size=64, num_attention_heads=2, num_query_groups=1, ffn_hidden_size=128))
    imported = tmp_path / "imported"
    assert CliRunner().invoke(main, ["import", str(src), str(imported)]).exit_code == 0
    path = train_config(tmp_path, sample_inputs, built, "wrong", more=f'init_from = "{imported}"')
    r = CliRunner().invoke(main, ["train", str(path), "--stage", "ct", "--lang", "zh", "--bridges", "with", "--dry-run"])
    assert r.exit_code == 2 and "train.model" in r.output and "hidden_size 64 vs 128" in r.output

    src, _ = released_model(tmp_path / "released2", qwen_tokenizer_json, PRESETS["tiny"])
    tok = json.loads((src / "tokenizer.json").read_text())
    vocab = tok["model"]["vocab"]
    a, b = (k for k, v in vocab.items() if v in (1000, 1001))
    vocab[a], vocab[b] = vocab[b], vocab[a]  # two ids swapped: loads fine, reads text wrongly
    (src / "tokenizer.json").write_text(json.dumps(tok))
    assert CliRunner().invoke(main, ["import", str(src), str(imported)]).exit_code == 0
    path = train_config(tmp_path, sample_inputs, built, "wrongtok", more=f'init_from = "{imported}"')
    r = CliRunner().invoke(main, ["train", str(path), "--stage", "ct", "--lang", "zh", "--bridges", "with", "--dry-run"])
    assert r.exit_code == 2 and "train.init_from" in r.output and "tokenizer" in r.output

    path = train_config(tmp_path, sample_inputs, built, "missing", more=f'init_from = "{tmp_path / "nothing"}"')
    r = CliRunner().invoke(main, ["train", str(path), "--stage", "ct", "--lang", "zh", "--bridges", "with", "--dry-run"])
    assert r.exit_code == 2 and "xcult import" in r.output
