"""The pretraining job end to end: 8 devices == 1 device, 2 processes == 1 process, kill + resume == uninterrupted
(on a prepared corpus), faults, bad input."""

import json
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

from minibert.cli import main
from tests.training.conftest import WIKI as WIKI_TEXT

ARGS = ["--family", "bert", "--seq-len", "32", "--batch-size", "8", "--log-every", "1", "--eval-every", "1000",
        "--warmup", "2"]


def pretrain_command(corpus, vocab, output, steps, *extra):
    return [sys.executable, "-m", "minibert", "pretrain", "--corpus", str(corpus), "--vocab", str(vocab),
            "--output", str(output), "--steps", str(steps), *ARGS, *extra]


def data_command(data, output, steps, *extra):
    return [sys.executable, "-m", "minibert", "pretrain", "--data", str(data), "--output", str(output),
            "--steps", str(steps), *ARGS, *extra]


@pytest.fixture(scope="module")
def prepared(corpus_and_vocab, tmp_path_factory):
    from minibert.training.prepare import PrepareConfig, prepare

    corpus, vocab = corpus_and_vocab
    out = tmp_path_factory.mktemp("prepared")
    prepare(PrepareConfig(corpus=[str(corpus)], output=str(out), vocab=str(vocab), workers=1, progress=False))
    return out


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
@pytest.mark.parametrize("family, objective", [("bert", "mlm+nsp"), ("bert", "mlm"), ("albert", "mlm+sop"),
                                               ("deberta", "rtd")])
def test_killed_and_resumed_run_equals_uninterrupted_run(prepared, tmp_path, family, objective):
    steps, half = 24, 12
    chosen = ("--save-every", str(half), "--objective", objective, "--family", family)
    run(data_command(prepared, tmp_path / "straight", steps, *chosen))

    command = data_command(prepared, tmp_path / "killed", steps, *chosen)
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


@pytest.mark.slow
def test_two_processes_give_the_same_losses_as_one(prepared, tmp_path):
    """Each process (one CPU device) builds only its rows of the batch; jax.distributed on localhost."""
    import socket

    run(data_command(prepared, tmp_path / "one", 4))
    with socket.socket() as s:
        s.bind(("localhost", 0))
        port = s.getsockname()[1]
    launch = ("import sys, jax; jax.distributed.initialize(f'localhost:{sys.argv[1]}', num_processes=2, "
              "process_id=int(sys.argv[2])); from minibert.cli import run; sys.exit(run(sys.argv[3:]))")
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    processes = [subprocess.Popen([sys.executable, "-c", launch, str(port), str(p),
                                   *data_command(prepared, tmp_path / "two", 4)[3:]], env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=Path(__file__).parents[2])
                 for p in range(2)]
    outputs = [p.communicate(timeout=300)[0].decode() for p in processes]
    assert all(p.returncode == 0 for p in processes), outputs[0][-3000:] + outputs[1][-3000:]
    np.testing.assert_allclose(losses(tmp_path / "two"), losses(tmp_path / "one"), atol=1e-5)
    assert len(losses(tmp_path / "two")) == 4                     # one process logs


@pytest.mark.parametrize("change, error, message", list([
    (["--corpus", "/no/such/corpus"], ValueError, "/no/such/corpus"),
    (["--family", "gpt"], ValueError, "unknown family 'gpt'"),
    (["--size", "huge"], ValueError, "unknown size 'huge'"),
    (["--objective", "rtd"], ValueError, "does not train with objective 'rtd'"),
    (["--seq-len", "600"], ValueError, "--seq-len 600 exceeds the model's max_position_embeddings 512"),
    (["--family", "roberta", "--seq-len", "513"], ValueError,
     r"--seq-len 513 exceeds the model's longest input, 512 tokens: its positions start at pad_token_id \+ 1 = 2 "
     "of max_position_embeddings 514"),
    (["--tokenizer", "bpe"], ValueError, "--tokenizer chooses how a new vocabulary is trained: not with --vocab"),
    (["--steps", "0"], ValueError, "pretraining needs steps ≥ 1, got 0"),
    (["--config-overrides", "num_layers=4"], ValueError, "BertConfig has no field 'num_layers'"),
    (["--config-overrides", "hidden_size=129"], ValueError, "hidden_size 129 is not a multiple of num_attention_heads 2"),
    (["--config", "/no/such/config.json"], FileNotFoundError, "--config /no/such/config.json: no such file"),
]) + [   # a --config file's faults: each names the file (written by the test as config.json in its output folder)
    (["--config", text], ValueError, message) for text, message in [
        ('{"num_hidden_layers": 3,\n "hidden_size": }', r"config.json: invalid JSON at line 2"),
        ('{"num_layers": 3}', r"config.json: BertConfig has no field 'num_layers'"),
        ('{"model_type": "flex"}', r"config.json: model_type 'flex', but this run trains a 'bert' model"),
        ('{"num_hidden_layers": "3"}', r"config.json: .*num_hidden_layers must be int"),
        ('[1, 2]', r"config.json: expected a JSON object")]
])   # (options out of range fail earlier, at parse time: tests/test_cli.py)
def test_bad_arguments_fail_before_training(corpus_and_vocab, tmp_path, change, error, message):
    corpus, vocab = corpus_and_vocab
    if change[0] == "--config" and change[1].startswith(("{", "[")):
        (tmp_path / "config.json").write_text(change[1])
        change = ["--config", str(tmp_path / "config.json")]
    args = ["pretrain", "--corpus", str(corpus), "--vocab", str(vocab), "--output", str(tmp_path), *ARGS, "--steps", "2"]
    with pytest.raises(error, match=message):
        main(args + change)
    assert not (tmp_path / "checkpoints").exists()


def test_existing_checkpoints_are_never_overwritten(corpus_and_vocab, tmp_path):
    corpus, vocab = corpus_and_vocab
    (tmp_path / "checkpoints" / "4").mkdir(parents=True)
    with pytest.raises(FileExistsError, match="--resume"):
        main(["pretrain", "--corpus", str(corpus), "--vocab", str(vocab), "--output", str(tmp_path), *ARGS, "--steps", "2"])


def test_bad_prepared_data_fails_before_training(prepared, corpus_and_vocab, tmp_path):
    from minibert.tokenization.tokenizer import WordPieceTokenizer
    from minibert.training.prepare import PrepareError

    corpus, _ = corpus_and_vocab
    args = ["pretrain", "--output", str(tmp_path / "run"), *ARGS, "--steps", "2"]
    with pytest.raises(FileNotFoundError, match="nothing does not exist"):
        main(args + ["--data", str(tmp_path / "nothing")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="is not a prepared corpus: no manifest.json"):
        main(args + ["--data", str(tmp_path / "empty")])
    with pytest.raises(ValueError, match="either --data .* or --corpus"):
        main(args + ["--data", str(prepared), "--corpus", str(corpus)])
    WordPieceTokenizer.train(iter(["another vocabulary altogether"] * 3), vocab_size=60).save_pretrained(tmp_path / "v")
    with pytest.raises(PrepareError, match="prepared with another tokenizer"):
        main(args + ["--data", str(prepared), "--vocab", str(tmp_path / "v")])
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_resuming_a_finished_run_or_another_model_says_so(prepared, tmp_path, capsys):
    args = ["pretrain", "--data", str(prepared), "--output", str(tmp_path), *ARGS, "--steps", "2"]
    assert main(args) == 0
    assert main(args + ["--resume"]) == 0
    assert "already trained for 2 steps: nothing to do" in capsys.readouterr().out
    with pytest.raises(ValueError, match=r"checkpoint of step 2 .* does not fit this model .*--size"):
        main(args + ["--resume", "--size", "mini", "--steps", "4"])


@pytest.mark.parametrize("attention, dropout, line, warned", [
    ("auto", 0.1, "attention: reference (einsum), dtype float32, on cpu", False),
    ("fused", 0.0, "attention: fused (jax.nn.dot_product_attention), dtype float32, on cpu", False),
    ("fused", 0.1, "attention: fused (jax.nn.dot_product_attention) in evaluation, reference (einsum) in training "
                   "(attention dropout), dtype float32, on cpu", True)])
def test_the_run_says_its_attention_and_dtype_and_warns_once_when_dropout_forces_the_reference(
        prepared, tmp_path, capsys, monkeypatch, attention, dropout, line, warned):
    """(The fused path is reachable on a CPU with attention="fused"; the preset's attention dropout is set here.)"""
    from minibert import presets
    from minibert.training.loop import TrainConfig
    from minibert.training.pretrain import PretrainConfig, build

    preset = presets.preset
    monkeypatch.setattr(presets, "preset", lambda family, size: (
        preset(family, size)[0], preset(family, size)[1] | {"attention_probs_dropout_prob": dropout}))
    config = PretrainConfig(family="bert", data=str(prepared), seq_len=32, batch_size=8, attention=attention,
                            train=TrainConfig(steps=2, output_dir=str(tmp_path)))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")                 # a second warning of the run would show, not be deduplicated
        build(config)
    assert [out for out in capsys.readouterr().out.splitlines() if out.startswith("attention:")] == [line]
    messages = [str(w.message) for w in caught if "attention dropout" in str(w.message)]
    assert len(messages) == warned
    assert not warned or "attention_probs_dropout_prob=0, as MosaicBERT and ModernBERT do" in messages[0]


def test_the_model_config_takes_the_tokenizers_special_token_ids(corpus_and_vocab):
    """pad, and bos/eos where the config has them (<s>/</s>, or BERT's [CLS]/[SEP] in their place); ModernBERT's
    four ids, which minibert's config does not declare, go to config.json through `extra`."""
    from minibert.models.modernbert import ModernBertConfig
    from minibert.models.roberta import RobertaConfig
    from minibert.tokenization import AutoTokenizer
    from minibert.training.pretrain import set_special_token_ids

    bpe = AutoTokenizer.train(iter(["the cat sat on the mat"] * 3), 300, model="bpe")
    wordpiece = AutoTokenizer.from_pretrained(corpus_and_vocab[1])
    config = RobertaConfig(pad_token_id=7, bos_token_id=7, eos_token_id=7)
    set_special_token_ids(config, bpe)
    assert (config.pad_token_id, config.bos_token_id, config.eos_token_id) == (1, 0, 2) and not config.extra
    set_special_token_ids(config, wordpiece)
    assert (config.pad_token_id, config.bos_token_id, config.eos_token_id) == (0, 2, 3)
    config = ModernBertConfig()
    set_special_token_ids(config, bpe)
    assert config.pad_token_id == 1 and config.to_dict() | {"bos_token_id": 0, "eos_token_id": 2, "cls_token_id": 0,
                                                            "sep_token_id": 2} == config.to_dict()


@pytest.mark.slow
def test_a_roberta_trains_with_its_byte_level_bpe_and_transformers_reads_the_same_model(tmp_path, capsys):
    """`minibert pretrain --family roberta --corpus FILE` trains RoBERTa's byte-level BPE (<s> <pad> </s> <unk>
    <mask>) on the file; `minibert fill-mask` fills its <mask>; transformers loads the directory, model and
    AutoTokenizer, and gives the same ids and logits."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    import minibert
    from minibert.tokenization import AutoTokenizer

    text = WIKI_TEXT.read_text(encoding="utf-8")[:100_000]
    (tmp_path / "small.txt").write_text(text, encoding="utf-8")
    out = tmp_path / "run"
    assert main(["pretrain", "--size", "tiny", "--steps", "20", "--corpus", str(tmp_path / "small.txt"),
                 "--output", str(out), *ARGS, "--family", "roberta"]) == 0
    assert main(["fill-mask", "--model", str(out), "The <mask> sat."]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-2] == "The <mask> sat." and len(lines[-1].split()) == 10      # 5 tokens with their scores
    tokenizer = AutoTokenizer.from_pretrained(out)
    assert tokenizer.convert_ids_to_tokens(range(5)) == ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    config = json.loads((out / "config.json").read_text())
    assert (config["pad_token_id"], config["bos_token_id"], config["eos_token_id"]) == (1, 0, 2)

    texts = ["The <mask> sat.", "A longer sentence, with <mask> and café naïve."]
    reference_tokenizer = transformers.AutoTokenizer.from_pretrained(out)
    reference = transformers.AutoModelForMaskedLM.from_pretrained(out).eval()
    batch = tokenizer(texts, padding=True, return_tensors="np")
    expected = reference_tokenizer(texts, padding=True, return_tensors="pt")
    np.testing.assert_array_equal(batch["input_ids"], expected["input_ids"].numpy())
    logits = np.asarray(minibert.from_pretrained(out)(batch["input_ids"], attention_mask=batch["attention_mask"]).logits)
    with torch.no_grad():
        expected_logits = reference(**expected).logits.numpy()
    real = batch["attention_mask"].astype(bool)
    np.testing.assert_allclose(logits[real], expected_logits[real], atol=1e-5)


def test_the_default_run_is_a_tiny_modernbert_scored_at_15_percent_masking(prepared):
    """The default job (README, "What the default run is"): the modernbert preset, 30% masking in training, and a
    held-out batch masked at BERT's 15% whatever the training rate, so that runs at 15% and 30% compare."""
    import numpy as np

    from minibert.tokenization import AutoTokenizer
    from minibert.training.pretrain import EVAL_MASK_RATE, PretrainConfig, corpus_batches, plan
    from minibert.training.shards import PreparedCorpus

    config = PretrainConfig(data=str(prepared), held_out_documents=0.3)
    p = plan(config)
    assert (config.family, config.size, p.objective, p.mask_rate) == ("modernbert", "tiny", "mlm", 0.3)
    tokenizer = AutoTokenizer.from_pretrained(prepared / "tokenizer")
    batches, held_out = corpus_batches(config, p, tokenizer, PreparedCorpus(prepared))
    rate = lambda batch: np.sum(batch["labels"] >= 0) / np.sum(batch["attention_mask"])
    assert abs(rate(batches(0)) - 0.3) < 0.05 and abs(rate(held_out) - EVAL_MASK_RATE) < 0.03


def test_config_overrides_change_the_presets_model(prepared):
    """`--config-overrides` (transformers' run_mlm.py syntax) sets model config fields over the size's preset."""
    from minibert.training.pretrain import PretrainConfig, plan

    p = plan(PretrainConfig(family="bert", data=str(prepared), config_overrides="num_hidden_layers=4,hidden_act=relu"))
    assert (p.model_config.num_hidden_layers, p.model_config.hidden_act, p.model_config.hidden_size) == (4, "relu", 128)


def test_config_file_then_overrides_over_the_preset(prepared, tmp_path):
    """`--config FILE` (a JSON object, e.g. a saved config.json) sets fields over the preset; `--set` then over it."""
    from minibert.training.pretrain import PretrainConfig, plan

    (tmp_path / "config.json").write_text('{"model_type": "flex", "positions": "rope", "ffn": "geglu", "norm": "pre"}')
    p = plan(PretrainConfig(family="flex", data=str(prepared), config_file=str(tmp_path / "config.json"),
                            config_overrides="norm=post,intra_bottleneck_size=64,num_feedforward_networks=2"))
    c = p.model_config
    assert (c.positions, c.ffn, c.norm, c.intra_bottleneck_size, c.num_feedforward_networks, c.hidden_size) == \
        ("rope", "geglu", "post", 64, 2, 128)
