"""The command line's contract: options checked at parse time, defaults read from the library's dataclasses,
a help line for every option, `--version`, and one line on stderr — never a traceback — for every error."""

import argparse
import dataclasses
import sys
from importlib.metadata import version

import pytest

import minibert.cli as cli
from minibert import options
from minibert.cli import build_parser, main, run
from minibert.training import distill, finetune, prepare, pretrain
from minibert.training.distill import DistillConfig
from minibert.training.finetune import FinetuneConfig
from minibert.training.loop import TrainConfig
from minibert.training.prepare import PrepareConfig
from minibert.training.pretrain import PretrainConfig

# the shortest valid command line of each subcommand with numeric options
COMMANDS = {
    "prepare": ["prepare", "--output", "out"],
    "pretrain": ["pretrain"],
    "distill": ["distill", "--teacher", "teacher"],
    "finetune": ["finetune", "--task", "glue", "--model", "model", "--train", "train.tsv"],
    "fill-mask": ["fill-mask", "--model", "model", "a [MASK]"],
    "text-classification": ["text-classification", "--model", "model", "a text"],
    "question-answering": ["question-answering", "--model", "model", "--context", "a context", "a question"],
    "quantize": ["quantize", "model", "out"],
    "parity": ["parity", "model"],
}
TRAINING = ["--steps -5", "--lr 0", "--lr nan", "--warmup -1", "--weight-decay -0.1", "--grad-accumulation 0",
            "--seed -1", "--log-every 0", "--eval-every 0", "--save-every 0"]
CORPUS = ["--workers -1", "--seq-len 4", "--batch-size 0", "--batch-size abc", "--mask-rate 1.5", "--mask-rate 0"]
BAD = {
    "prepare": ["--vocab-size 5", "--vocab-sample 0", "--workers -1", "--seed -1"],
    "pretrain": TRAINING + CORPUS + ["--vocab-size 3"],
    "distill": TRAINING + CORPUS + ["--transfer-steps -1", "--alpha 1.5", "--temperature 0"],
    "finetune": TRAINING + ["--max-length 4", "--batch-size 0", "--eval-batch-size 0", "--epochs 0",
                            "--warmup-ratio 2", "--train-limit 0", "--eval-limit 0", "--doc-stride 0",
                            "--max-query-length 0", "--max-answer-length 0", "--alpha -1", "--temperature 0"],
    "fill-mask": ["--top-k 0"],
    "text-classification": ["--top-k 0"],
    "question-answering": ["--top-k 0"],
    "quantize": ["--max-length 0", "--eval-batch-size 0", "--eval-limit 0"],
    "parity": ["--batch-size 0", "--seq-len 0", "--seed -1", "--tolerance 0", "--tolerance -1e-5"],
}


def exit_status(argv, capsys) -> tuple[int, str]:
    """`run(argv)`'s exit status (argparse's SystemExit included) and what it printed on stderr."""
    try:
        status = run(argv)
    except SystemExit as exit:
        status = exit.code
    return status, capsys.readouterr().err


@pytest.mark.parametrize("command, change", [(c, v) for c, values in BAD.items() for v in values])
def test_an_option_out_of_range_fails_at_parse_time_in_one_line(command, change, capsys):
    flag, value = change.split()
    status, err = exit_status(COMMANDS[command] + [f"{flag}={value}"], capsys)   # (= lets argparse take -1e-5)
    assert status == 2
    assert err.count("\n") == 1 and "Traceback" not in err
    assert f"argument {flag}: " in err and (f"got {value}" in err or f"not an integer: '{value}'" in err), err


def test_the_message_names_the_option_the_range_and_the_value(capsys):
    assert exit_status(["pretrain", "--batch-size", "0"], capsys) == (
        2, "minibert pretrain: error: argument --batch-size: must be ≥ 1, got 0 (see minibert pretrain --help)\n")
    assert "argument --mask-rate: must be in (0, 1), got 1.5" in exit_status(["pretrain", "--mask-rate", "1.5"], capsys)[1]


@pytest.mark.parametrize("config, message", [
    (TrainConfig(log_every=0), "log_every must be ≥ 1, got 0"),
    (TrainConfig(learning_rate=-1.0), r"learning_rate must be > 0, got -1.0"),
    (PretrainConfig(batch_size=0), "batch_size must be ≥ 1, got 0"),
    (PretrainConfig(mask_rate=1.0), r"mask_rate must be in \(0, 1\), got 1.0"),
    (FinetuneConfig(warmup_ratio=1.5), r"warmup_ratio must be in \[0, 1\], got 1.5"),
    (DistillConfig(temperature=0.0), "temperature must be > 0, got 0.0"),
    (PrepareConfig(corpus=None, output="out", workers=-2), "workers must be ≥ 0, got -2"),
])
def test_the_library_configs_check_the_same_ranges(config, message):
    with pytest.raises(ValueError, match=message):
        options.check(config)


def test_library_entry_points_check_before_reading_anything(tmp_path):
    """API users get the range errors too, before a file is read or a step compiled."""
    with pytest.raises(ValueError, match="batch_size must be ≥ 1, got 0"):
        pretrain.plan(PretrainConfig(batch_size=0, corpus=["/no/such/corpus"]))
    with pytest.raises(ValueError, match="save_every must be ≥ 1, got 0"):
        pretrain.plan(PretrainConfig(train=TrainConfig(save_every=0)))
    with pytest.raises(ValueError, match="pretraining needs steps ≥ 1, got 0"):
        pretrain.build(PretrainConfig(corpus=["/no/such/corpus"], train=TrainConfig(steps=0)))
    with pytest.raises(ValueError, match="eval_batch_size must be ≥ 1, got 0"):
        finetune.build(FinetuneConfig(model="/no/such/model", train_file="/no/such/file", eval_batch_size=0))
    teacher = tmp_path / "teacher"
    teacher.mkdir()
    (teacher / "config.json").write_text("{}")
    (teacher / "vocab.txt").write_text("")
    with pytest.raises(ValueError, match=r"alpha must be in \[0, 1\], got 2.0"):
        distill.build(DistillConfig(teacher=str(teacher), alpha=2.0))
    with pytest.raises(ValueError, match="vocab_sample_mb must be > 0, got 0.0"):
        prepare.prepare(PrepareConfig(corpus=["/no/such/corpus"], output=str(tmp_path / "p"), vocab_sample_mb=0.0))


class Captured(Exception):
    """Raised by a stand-in for a library entry point: carries the config the command built."""


@pytest.mark.parametrize("command, module, function, expected", [
    ("pretrain", pretrain, "pretrain", PretrainConfig()),
    ("distill", distill, "distill", DistillConfig(teacher="teacher")),
    ("prepare", prepare, "prepare", PrepareConfig(corpus=None, output="out")),
    # --steps and --warmup default to unset: --epochs and --warmup-ratio (the config's) decide them in `build`
    ("finetune", finetune, "finetune", FinetuneConfig(task="glue", model="model", train_file="train.tsv", train=dataclasses.replace(
        FinetuneConfig().train, steps=0, warmup_steps=0))),
])
def test_the_cli_defaults_are_the_dataclass_defaults(command, module, function, expected, monkeypatch):
    """Every option left out gives the library config's own default: there is no second copy to drift."""
    def capture(config):
        raise Captured(config)

    monkeypatch.setattr(module, function, capture)
    with pytest.raises(Captured) as captured:
        main(COMMANDS[command])
    assert captured.value.args[0] == expected


@pytest.mark.parametrize("command, module", [("prepare", prepare), ("pretrain", pretrain)])
def test_the_tokenizer_algorithm_is_a_choice_checked_at_parse_time(command, module, monkeypatch, capsys):
    status, err = exit_status(COMMANDS[command] + ["--tokenizer", "sentencepiece"], capsys)
    assert status == 2 and err.count("\n") == 1 and "argument --tokenizer: invalid choice: 'sentencepiece'" in err

    def capture(config):
        raise Captured(config)

    monkeypatch.setattr(module, command, capture)
    with pytest.raises(Captured) as captured:
        main(COMMANDS[command] + ["--tokenizer", "unigram"])
    assert captured.value.args[0].tokenizer == "unigram"


def subcommands(parser: argparse.ArgumentParser):
    """(name, parser) of every subcommand, nested ones (`assignment make`) included."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from ([(name, sub)] if not any(isinstance(a, argparse._SubParsersAction) for a in sub._actions)
                            else [(f"{name} {n}", s) for n, s in subcommands(sub)])


def test_every_option_of_every_command_has_a_help_line():
    missing = [f"{name} {action.dest}" for name, sub in subcommands(build_parser()) for action in sub._actions
               if not action.help]
    assert not missing
    assert len(list(subcommands(build_parser()))) >= 11


def test_help_shows_the_defaults_and_version_the_package(capsys):
    with pytest.raises(SystemExit) as exit:
        main(["pretrain", "--help"])
    out = capsys.readouterr().out
    assert exit.value.code == 0
    steps = PretrainConfig().train.steps
    assert f"(default: {steps})" in out and "(default: runs/minibert-tiny)" in out and "(default: None)" not in out
    with pytest.raises(SystemExit) as exit:
        main(["--version"])
    assert exit.value.code == 0 and capsys.readouterr().out == f"minibert {version('minibert')}\n"


@pytest.mark.parametrize("error, status, line", [
    (KeyboardInterrupt(), 130, "minibert: interrupted"),
    (FileNotFoundError("no such file: x.tsv"), 1, "minibert: error: no such file: x.tsv"),
    (KeyError("id2label"), 1, "minibert: error: missing key 'id2label'"),
    (ImportError("no torch"), 1, "minibert: error: no torch"),
    (FloatingPointError("loss not finite at step 3"), 1, "minibert: error: loss not finite at step 3"),
    (RuntimeError("boom"), 1, "minibert: internal error: RuntimeError: boom (a bug in minibert; set "
                              "MINIBERT_TRACEBACK=1 for the traceback)"),
])
def test_every_error_ends_in_one_line(error, status, line, monkeypatch, capsys):
    def fail(args):
        raise error

    monkeypatch.delenv(cli.TRACEBACK_VARIABLE, raising=False)
    monkeypatch.setattr(cli, "parity", fail)
    assert exit_status(["parity", "model"], capsys) == (status, line + "\n")
    monkeypatch.setenv(cli.TRACEBACK_VARIABLE, "1")
    with pytest.raises(type(error)):
        run(["parity", "model"])


def test_parity_without_torch_says_what_to_install(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv(cli.TRACEBACK_VARIABLE, raising=False)
    monkeypatch.setitem(sys.modules, "torch", None)               # `import torch` raises ImportError
    status, err = exit_status(["parity", str(tmp_path)], capsys)
    assert status == 1 and err.count("\n") == 1
    assert "minibert parity needs torch and transformers" in err and "torch is not installed" in err


def test_a_pretraining_run_ends_with_a_summary_of_what_it_reached_and_how_to_use_it(capsys):
    args = argparse.Namespace(output="runs/tiny")
    history = [{"step": 10, "loss": 8.27}, {"step": 1000, "loss": 4.14, "eval_accuracy": 0.338,
                                            "eval_perplexity": 57.7}]
    cli.print_summary(args, history, 162.0)
    out = capsys.readouterr().out
    assert "done in 2.7 min: training loss 8.27 (step 10) → 4.14 (step 1000)" in out
    assert "held-out MLM accuracy 0.338: the share of masked tokens" in out and "perplexity 57.7" in out
    assert "minibert fill-mask --model runs/tiny" in out and "minibert finetune --task glue --model runs/tiny" in out
    assert len(cli.DEMO_SENTENCES) == 3 and all(s.count("[MASK]") == 1 for s in cli.DEMO_SENTENCES)


def test_every_command_runs_with_the_persistent_compilation_cache_on(monkeypatch):
    """A second run of a command loads its compiled shapes from disk (minibert/compilation_cache.py)."""
    from minibert import compilation_cache

    calls = []
    monkeypatch.setattr(compilation_cache, "enable_compilation_cache", lambda: calls.append("cache on"))
    monkeypatch.setattr(cli, "parity", lambda args: calls.append("ran") or 0)
    assert main(["parity", "model"]) == 0 and calls == ["cache on", "ran"]
