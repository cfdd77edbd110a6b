"""Real Megatron-Core runs on CPU through `xcult train` (torchrun, gloo) on a prep output."""

import json
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("megatron.core")
pytest.importorskip("transformers")
import torch  # noqa: E402
from click.testing import CliRunner  # noqa: E402

from tests.conftest import write_config  # noqa: E402
from xcult.cli import main  # noqa: E402
from xcult.config import load_config  # noqa: E402

TRAIN = """
[train]
model = "tiny"
seq_length = 32
micro_batch_size = 4
global_batch_size = 8
log_every = 100
threads = {threads}
checkpoints = "{ckpts}"
{more}

[train.pretrain]
steps = 24
save_every = 8
lr = 3e-3
min_lr = 3e-4

[train.ct]
steps = 6
save_every = 3
"""


def train_config(tmp, sample_inputs, built, name, more="", threads=2):
    """A config over the `built` prep outputs with its own checkpoint directory."""
    cfg, _ = built
    path = write_config(tmp / f"{name}.toml", sample_inputs, cfg.out_dir, langs=("zh",))
    text = path.read_text() + TRAIN.format(ckpts=tmp / name, more=more, threads=threads)
    path.write_text(text)
    return path


def xcult_train(*args):
    """`xcult train` in a child process, as a user runs it."""
    r = subprocess.run([sys.executable, "-m", "xcult.cli", "train", *map(str, args)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return r


def losses(run_dir):
    return [json.loads(line)["loss"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def tensorboard_scalars(run_dir, tag):
    """(step, value) pairs as TensorBoard shows them (events an earlier launch wrote past a
    resumed run's checkpoint are purged)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"scalars": 0})
    acc.Reload()
    return [(e.step, e.value) for e in acc.Scalars(tag)] if tag in acc.Tags()["scalars"] else []


@pytest.fixture(scope="module")
def trained(tmp_path_factory, sample_inputs, built):
    tmp = tmp_path_factory.mktemp("train")
    path = train_config(tmp, sample_inputs, built, "main")
    xcult_train(path, "--stage", "pretrain")
    xcult_train(path, "--stage", "ct", "--lang", "zh", "--bridges", "with")
    return load_config(path), tmp


def test_pretraining_loss_decreases(trained):
    cfg, tmp = trained
    run = tmp / "main" / "pretrain"
    loss = losses(run)
    assert len(loss) == 24
    # Random init predicts ~uniformly over 151,936 ids: ln(151936) = 11.93.
    assert abs(loss[0] - np.log(151936)) < 0.3
    assert np.mean(loss[-4:]) < loss[0] - 3.0
    assert sorted(p.name for p in run.glob("iter_*")) == ["iter_0000000", "iter_0000008", "iter_0000016", "iter_0000024"]
    done = json.loads((run / "done.json").read_text())
    assert done["steps"] == 24 and done["tokens"] == 24 * 8 * 32


def test_tensorboard_holds_every_step_of_the_training_curves(trained):
    cfg, tmp = trained
    for run in (tmp / "main" / "pretrain", tmp / "main" / "ct-zh-with"):
        metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        for key, tag in (("loss", "train/loss"), ("lr", "train/lr"), ("grad_norm", "train/grad_norm"), ("tokens_per_s_per_device", "train/tokens_per_s_per_device")):
            got = tensorboard_scalars(run, tag)
            assert [s for s, _ in got] == [m["step"] for m in metrics]
            np.testing.assert_allclose([v for _, v in got], [m[key] for m in metrics], rtol=1e-6)
        assert tensorboard_scalars(run, "train/mfu") == []  # no MFU without a GPU's peak


def test_resume_gives_the_uninterrupted_losses(trained, tmp_path, sample_inputs, built):
    cfg, tmp = trained
    path = train_config(tmp_path, sample_inputs, built, "resume")
    xcult_train(path, "--stage", "pretrain", "--stop-after", "10")  # stops after step 10; newest checkpoint: 8
    run = tmp_path / "resume" / "pretrain"
    assert not (run / "done.json").exists() and len(losses(run)) == 10
    xcult_train(path, "--stage", "pretrain")
    # Steps 9-10 were logged twice (once before the stop, once after resuming from step 8): only the latter survive.
    np.testing.assert_allclose(losses(run), losses(tmp / "main" / "pretrain"), rtol=1e-5)
    tb = tensorboard_scalars(run, "train/loss")
    assert [s for s, _ in tb] == list(range(1, 25))  # two launches' event files; the first's steps 9-10 purged
    np.testing.assert_allclose([v for _, v in tb], losses(run), rtol=1e-6)


def wandb_history(run_dir):
    """(run id, [history rows]) of the offline W&B run under `run_dir`: its .wandb file is a
    LevelDB-style log (7-byte file header; 32 KiB blocks of records with a 7-byte header:
    crc, length, type 1 full / 2 first / 3 middle / 4 last) of wandb's protobuf Records."""
    import struct

    from wandb.proto import wandb_internal_pb2 as pb

    (path,) = run_dir.glob("wandb/offline-run-*/run-*.wandb")
    data, pos, chunk, rows, run_id = path.read_bytes(), 7, b"", [], None
    while pos + 7 <= len(data):
        left = 32768 - pos % 32768
        if left < 7:
            pos += left
            continue
        _, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        chunk, pos = chunk + data[pos + 7 : pos + 7 + length], pos + 7 + length
        if kind in (1, 4):
            record = pb.Record()
            record.ParseFromString(chunk)
            chunk = b""
            if record.WhichOneof("record_type") == "run":
                run_id = record.run.run_id
            elif record.WhichOneof("record_type") == "history":
                rows.append({i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in record.history.item})
    return run_id, rows


def test_two_data_parallel_processes_keep_replicas_identical(trained, tmp_path, sample_inputs, built, monkeypatch):
    cfg, tmp = trained
    monkeypatch.setenv("WANDB_MODE", "offline")  # W&B without a server: the run is written to disk
    more = 'nproc_per_node = 2\nwandb_project = "xcult-test"'
    path = train_config(tmp_path, sample_inputs, built, "ddp", more=more, threads=1)
    xcult_train(path, "--stage", "pretrain")
    run = tmp_path / "ddp" / "pretrain"
    sums = json.loads((run / "done.json").read_text())["replica_checksums"]
    assert len(sums) == 2 and sums[0] == sums[1]
    # Same global batch split over two ranks: the same losses up to reduction order.
    np.testing.assert_allclose(losses(run), losses(tmp / "main" / "pretrain"), rtol=1e-4)
    # Rank 0 alone logged to W&B (one offline run), every step's loss.
    run_id, rows = wandb_history(run)
    assert run_id.startswith("xcult-")
    assert [r["_step"] for r in rows] == list(range(1, 25))
    np.testing.assert_allclose([r["train/loss"] for r in rows], losses(run), rtol=1e-6)


def test_continued_pretraining_starts_from_the_pretrained_model(trained):
    from xcult.checkpoints import load_megatron
    from xcult.train.export import hf_state_dict

    cfg, tmp = trained
    ct = tmp / "main" / "ct-zh-with"
    assert sorted(p.name for p in ct.glob("iter_*")) == ["iter_0000000", "iter_0000003", "iter_0000006"]
    a, job = load_megatron(ct / "iter_0000000")
    b, _ = load_megatron(tmp / "main" / "pretrain" / "iter_0000024")
    sa, sb = hf_state_dict(a, job["arch"]), hf_state_dict(b, job["arch"])
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert job["data_prefix"].endswith("zh/with/zh_with") and job["init_from"].endswith("pretrain/iter_0000024")


def test_export_logits_equal_megatron(trained, tmp_path):
    from transformers import AutoModelForCausalLM

    from xcult.checkpoints import load_megatron

    cfg, tmp = trained
    ckpt = tmp / "main" / "ct-zh-with" / "iter_0000006"
    r = CliRunner().invoke(main, ["export", str(ckpt), str(tmp_path / "hf")])
    assert r.exit_code == 0, r.output
    hf = AutoModelForCausalLM.from_pretrained(tmp_path / "hf").eval()
    mg, _ = load_megatron(ckpt)
    ids = torch.tensor([[151643, 785, 6722, 315, 9625, 374, 12095, 13, 99487, 100, 1879]])
    with torch.no_grad():
        a = mg(ids, torch.arange(ids.shape[1])[None], None)
        b = hf(ids).logits
    # fp32 on both sides; different kernels (fused QKV vs split) reorder sums only.
    assert torch.allclose(a, b, atol=1e-4), (a - b).abs().max()
    assert (tmp_path / "hf" / "tokenizer.json").is_file()


def test_megatron_backend_predicts_like_the_export(trained, tmp_path, qwen_tokenizer_json):
    from tokenizers import Tokenizer

    from tests.eval.test_scoring import CRAFTED
    from xcult.eval.backends import load_model
    from xcult.eval.scoring import ClozeScorer
    from xcult.train.export import export

    cfg, tmp = trained
    ckpt = tmp / "main" / "ct-zh-with" / "iter_0000006"
    hf_dir = export(ckpt, tmp_path / "hf")
    tok = Tokenizer.from_file(str(qwen_tokenizer_json))
    a = ClozeScorer(load_model("auto", ckpt, "cpu"), tok, 151643).score(CRAFTED)
    b = ClozeScorer(load_model("auto", hf_dir, "cpu"), tok, 151643).score(CRAFTED)
    for x, y in zip(a, b):
        np.testing.assert_allclose(x.scores, y.scores, atol=1e-5)
        assert x.prediction == y.prediction


@pytest.mark.parametrize(
    "more,key",
    [
        ('model = "huge"', "train.model"),
        ("global_batch_size = 6", "train.global_batch_size"),
        ("nproc_per_node = 3", "train.global_batch_size"),
        ("seq_length = 100000", "train.seq_length"),
    ],
)
def test_bad_config_fails_before_any_process(tmp_path, sample_inputs, built, more, key):
    path = train_config(tmp_path, sample_inputs, built, "bad")
    text = path.read_text()
    name = more.split(" = ")[0]
    text = "\n".join(l for l in text.splitlines() if not l.startswith(name + " ")).replace("[train]\n", f"[train]\n{more}\n", 1)
    path.write_text(text)
    r = CliRunner().invoke(main, ["train", str(path), "--stage", "pretrain"])
    assert r.exit_code == 2 and key in r.output
    assert not (tmp_path / "bad").exists()


def test_missing_corpus_and_missing_pretraining_are_named(tmp_path, sample_inputs, built):
    path = train_config(tmp_path, sample_inputs, built, "nopre")
    r = CliRunner().invoke(main, ["train", str(path), "--stage", "ct", "--lang", "zh", "--bridges", "without"])
    assert r.exit_code == 2 and "holds no finished run" in r.output
    moved = tmp_path / "other.toml"
    moved.write_text(path.read_text().replace(f'out_dir = "{built[0].out_dir}"', f'out_dir = "{tmp_path / "empty"}"'))
    r = CliRunner().invoke(main, ["train", str(moved), "--stage", "pretrain"])
    assert r.exit_code == 2 and "en.bin does not exist" in r.output and "xcult prep" in r.output


def test_dry_run_prints_jobs_and_commands(tmp_path, sample_inputs, built):
    path = train_config(tmp_path, sample_inputs, built, "dry")
    r = CliRunner().invoke(main, ["train", str(path), "--all", "--dry-run"])
    assert r.exit_code == 0, r.output
    assert r.output.count("torch.distributed.run") == 3 and r.output.count("--standalone") == 3
    assert '"name": "ct-zh-without"' in r.output and not (tmp_path / "dry").exists()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_gpu_bf16_run(tmp_path, sample_inputs, built):
    path = train_config(tmp_path, sample_inputs, built, "gpu", more='precision = "bf16"')
    xcult_train(path, "--stage", "pretrain")
    job = json.loads((tmp_path / "gpu" / "pretrain" / "job.json").read_text())
    assert job["bf16"] and job["distributed_optimizer"]
    assert np.mean(losses(tmp_path / "gpu" / "pretrain")[-4:]) < losses(tmp_path / "gpu" / "pretrain")[0] - 3.0


def test_replay_blends_english_into_continued_pretraining(trained, tmp_path):
    """train.replay_english: CT samples come from the CT corpus and, by weight, from the
    English pretraining corpus (Megatron's BlendedDataset)."""
    import dataclasses

    from training.data import build_dataset
    from xcult.train.launch import find_run, job

    cfg, _ = trained
    replay = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, replay_english=0.3))
    j = job(replay, find_run(replay, "ct", "zh", "with"))
    (ct, w_ct), (en, w_en) = j["data_blend"]
    assert ct.endswith("zh/with/zh_with") and en.endswith("en/en") and (w_ct, w_en) == pytest.approx((0.7, 0.3))
    assert job(cfg, find_run(cfg, "ct", "zh", "with"))["data_blend"] == [[ct, 1.0]]
    ds = build_dataset(j["data_blend"], 400, 32, 1, j["arch"]["vocab_size"], j["eod"], str(tmp_path))
    source = np.asarray(ds.dataset_index[:400])
    assert abs((source == 1).mean() - 0.3) < 0.02
    assert job(cfg, find_run(cfg, "pretrain", None, None))["data_blend"] == [[j["data_blend"][1][0], 1.0]]


def test_a_run_whose_settings_changed_refuses_until_forced(tmp_path, sample_inputs, built):
    """A finished run trained under other settings is not reported done: xcult train
    names what changed and how to force a retrain; --force retrains it."""
    from xcult.train.launch import find_run, is_done, run_status

    path = train_config(tmp_path, sample_inputs, built, "stale")
    path.write_text(path.read_text().replace("steps = 24\nsave_every = 8", "steps = 4\nsave_every = 4"))
    xcult_train(path, "--stage", "pretrain")
    cfg = load_config(path)
    run = find_run(cfg, "pretrain", None, None)
    assert is_done(cfg, run) and run_status(cfg, run).state == "current"
    path.write_text(path.read_text().replace("lr = 3e-3", "lr = 1e-3", 1))
    changed = load_config(path)
    assert run_status(changed, run).reason == "setting schedule.lr 0.003 -> 0.001"
    r = CliRunner().invoke(main, ["train", str(path), "--stage", "pretrain"])
    assert r.exit_code == 2 and "schedule.lr" in r.output and "--force" in r.output
    before = (tmp_path / "stale" / "pretrain" / "done.json").stat().st_mtime_ns
    xcult_train(path, "--stage", "pretrain", "--force")
    assert (tmp_path / "stale" / "pretrain" / "done.json").stat().st_mtime_ns != before
    assert is_done(changed, run) and json.loads((tmp_path / "stale" / "pretrain" / "job.json").read_text())["schedule"]["lr"] == 1e-3


def test_a_damaged_checkpoint_is_an_error_naming_the_file(trained, tmp_path):
    """Truncated or altered shards are caught by the listing saved with the checkpoint."""
    import shutil

    from xcult.checkpoints import load_megatron
    from xcult.errors import InputError

    _, tmp = trained
    src = tmp / "main" / "pretrain"
    run = tmp_path / "pretrain"
    shutil.copytree(src, run)
    ckpt = run / "iter_0000024"
    listing = json.loads((ckpt / "files.json").read_text())
    assert listing and all(v["size"] == (ckpt / k).stat().st_size for k, v in listing.items())
    load_megatron(ckpt)  # intact: loads
    shard = max((ckpt / k for k in listing), key=lambda p: p.stat().st_size)
    data = shard.read_bytes()
    shard.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match=r"has [\d,]+ bytes; [\d,]+ were saved") as e:
        load_megatron(ckpt)
    assert e.value.path == str(shard)
    shard.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))  # same size, one bit flipped
    with pytest.raises(InputError, match="SHA-256 mismatch"):
        load_megatron(ckpt)


def test_a_truncated_safetensors_file_is_an_error_naming_it(tmp_path, qwen_tokenizer_json):
    import torch

    from xcult.errors import InputError
    from xcult.eval.hf import HFCausalLM, write_random_qwen2

    d = write_random_qwen2(tmp_path / "hf", qwen_tokenizer_json, layers=1, hidden=64, heads=2, kv_heads=1)
    weights = d / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(InputError, match="cannot be loaded") as e:
        HFCausalLM(d, torch.device("cpu"), torch.float32)
    assert e.value.path == str(weights)


def test_sigkill_during_training_resumes_to_the_uninterrupted_losses(trained, tmp_path, sample_inputs, built):
    """A real SIGKILL of the whole process group after the step-8 checkpoint, plus the
    half-written checkpoint directory a kill during a save leaves: the rerun resumes from
    step 8 and reproduces the uninterrupted run's losses."""
    import os
    import signal
    import time

    _, tmp = trained
    path = train_config(tmp_path, sample_inputs, built, "killed")
    run = tmp_path / "killed" / "pretrain"
    proc = subprocess.Popen(
        [sys.executable, "-m", "xcult.cli", "train", str(path), "--stage", "pretrain"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 300
        while not (run / "iter_0000008").is_dir() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.02)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert (run / "iter_0000008").is_dir() and not (run / "done.json").exists()
    partial = run / ".iter_0000016.tmp"  # what a kill during the step-16 save leaves
    partial.mkdir(exist_ok=True)
    (partial / "__0_0.distcp").write_bytes(b"half a shard")
    xcult_train(path, "--stage", "pretrain")
    assert not partial.exists()
    assert sorted(p.name for p in run.glob("iter_*")) == ["iter_0000000", "iter_0000008", "iter_0000016", "iter_0000024"]
    np.testing.assert_allclose(losses(run), losses(tmp / "main" / "pretrain"), rtol=1e-5)


def test_a_killed_launcher_takes_its_workers_with_it(tmp_path, sample_inputs, built):
    """SIGKILL to `xcult train` alone (not its process group): torchrun and the worker
    must not train on by themselves."""
    import os
    import signal
    import time

    path = train_config(tmp_path, sample_inputs, built, "orphans")
    run = tmp_path / "orphans" / "pretrain"
    proc = subprocess.Popen([sys.executable, "-m", "xcult.cli", "train", str(path), "--stage", "pretrain"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 300
    while not (run / "metrics.jsonl").is_file() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    time.sleep(3)
    lines = (run / "metrics.jsonl").read_text().count("\n")
    time.sleep(3)
    assert (run / "metrics.jsonl").read_text().count("\n") == lines  # nobody is still training
    assert not (run / "done.json").exists()
    r = subprocess.run(["pgrep", "-f", str(run / "job.json")], capture_output=True, text=True)
    assert r.stdout.strip() == "", r.stdout
