"""The pretraining job end to end: 8 devices == 1 device, kill + resume == uninterrupted, faults, bad input."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

from minibert.cli import main

ARGS = ["--seq-len", "32", "--batch-size", "8", "--log-every", "1", "--eval-every", "1000", "--warmup", "2"]


def pretrain_command(corpus, vocab, output, steps, *extra):
    return [sys.executable, "-m", "minibert", "pretrain", "--corpus", str(corpus), "--vocab", str(vocab),
            "--output", str(output), "--steps", str(steps), *ARGS, *extra]


def run(command, devices=1):
    env = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}", "JAX_PLATFORMS": "cpu"}
    subprocess.run(command, check=True, env=env, capture_output=True, cwd=Path(__file__).parents[2])


def losses(output):
    return [r["loss"] for r in map(json.loads, (Path(output) / "metrics.jsonl").read_text().splitlines())]


@pytest.mark.slow
def test_eight_devices_give_the_same_losses_as_one(corpus_and_vocab, tmp_path):
    corpus, vocab = corpus_and_vocab
    run(pretrain_command(corpus, vocab, tmp_path / "one", 5), devices=1)
    run(pretrain_command(corpus, vocab, tmp_path / "eight", 5), devices=8)
    np.testing.assert_allclose(losses(tmp_path / "eight"), losses(tmp_path / "one"), atol=1e-5)
    assert len(losses(tmp_path / "one")) == 5


@pytest.mark.slow
def test_killed_and_resumed_run_equals_uninterrupted_run(corpus_and_vocab, tmp_path):
    corpus, vocab = corpus_and_vocab
    steps, half = 24, 12
    run(pretrain_command(corpus, vocab, tmp_path / "straight", steps, "--save-every", str(half)))

    command = pretrain_command(corpus, vocab, tmp_path / "killed", steps, "--save-every", str(half))
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               cwd=Path(__file__).parents[2])
    checkpoint = tmp_path / "killed" / "checkpoints" / str(half)
    deadline = time.time() + 240
    while not checkpoint.exists() and process.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    assert process.poll() is None, "the run ended before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (tmp_path / "killed" / "model.safetensors").exists()

    run(command + ["--resume"])
    assert losses(tmp_path / "killed")[-half:] == losses(tmp_path / "straight")[-half:]
    straight, resumed = load_file(tmp_path / "straight" / "model.safetensors"), load_file(tmp_path / "killed" / "model.safetensors")
    for key in straight:
        np.testing.assert_array_equal(straight[key], resumed[key], err_msg=key)


def test_nan_stops_with_the_step_and_keeps_the_last_good_checkpoint(corpus_and_vocab, tmp_path, monkeypatch):
    import jax.numpy as jnp

    from minibert.training import optim

    corpus, vocab = corpus_and_vocab
    monkeypatch.setattr(optim, "learning_rate_schedule", lambda *a: lambda count: jnp.where(count >= 2, jnp.nan, 1e-3))
    args = ["pretrain", "--corpus", str(corpus), "--vocab", str(vocab), "--output", str(tmp_path), *ARGS,
            "--steps", "6", "--save-every", "2"]
    with pytest.raises(FloatingPointError, match=r"not finite at step 3 .*last good checkpoint is step 2"):
        main(args)
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["2"]
    assert not (tmp_path / "model.safetensors").exists()


@pytest.mark.parametrize("change, error, message", [
    (["--corpus", "/no/such/corpus"], FileNotFoundError, "does not exist"),
    (["--family", "gpt"], ValueError, "unknown family 'gpt'"),
    (["--size", "huge"], ValueError, "unknown size 'huge'"),
    (["--objective", "rtd"], ValueError, "does not train with objective 'rtd'"),
    (["--seq-len", "600"], ValueError, "--seq-len 600 exceeds the model's max_position_embeddings 512"),
])
def test_bad_arguments_fail_before_training(corpus_and_vocab, tmp_path, change, error, message):
    corpus, vocab = corpus_and_vocab
    args = ["pretrain", "--corpus", str(corpus), "--vocab", str(vocab), "--output", str(tmp_path), *ARGS, "--steps", "2"]
    with pytest.raises(error, match=message):
        main(args + change)
    assert not (tmp_path / "checkpoints").exists()


def test_existing_checkpoints_are_never_overwritten(corpus_and_vocab, tmp_path):
    corpus, vocab = corpus_and_vocab
    (tmp_path / "checkpoints" / "4").mkdir(parents=True)
    with pytest.raises(FileExistsError, match="--resume"):
        main(["pretrain", "--corpus", str(corpus), "--vocab", str(vocab), "--output", str(tmp_path), *ARGS, "--steps", "2"])
