"""Every ```python block of README.md runs as written: in README order, each in a fresh namespace (as a user
pastes it), all in one empty folder (the first ones write the `tiny-bert` directory that later ones read); and the
fine-tuning recipe, scaled down, prints the same numbers and writes the same bytes in two runs."""

import hashlib
import json
import os
import re
import subprocess
import sys
import traceback
from pathlib import Path

import pytest

README = Path(__file__).parents[1] / "README.md"
DATA = Path(__file__).parents[2] / "shared" / "data"


def python_blocks(text: str) -> list[tuple[int, str]]:
    """(line number of the block's first code line, code) of every ```python block."""
    return [(text.count("\n", 0, m.start(1)) + 1, m.group(1))
            for m in re.finditer(r"^```python\n(.*?)^```", text, flags=re.M | re.S)]


def test_the_readme_has_python_snippets():
    assert len(python_blocks(README.read_text(encoding="utf-8"))) >= 3


@pytest.mark.slow
def test_every_python_snippet_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    failures = []
    for line, code in python_blocks(README.read_text(encoding="utf-8")):
        try:                             # (padded so that a traceback's line numbers are README.md's)
            exec(compile("\n" * (line - 1) + code, str(README), "exec"), {"__name__": "__readme__"})
        except Exception as error:       # every block runs; all failures reported together
            where = traceback.extract_tb(error.__traceback__)
            at = next((f.lineno for f in reversed(where) if f.filename == str(README)), line)
            failures.append(f"README.md:{at} (the block at line {line}): {type(error).__name__}: {error}")
    assert not failures, "\n".join(failures)


def recipe_run(folder: Path, hash_seed: str) -> dict[str, str]:
    """The README's fine-tuning recipe, scaled down (two corpus files prepared by two worker processes, a vocabulary
    trained on them, a few steps), run as its commands in fresh processes of the given PYTHONHASHSEED: what
    `finetune` and `quantize` printed (`pretrain` prints its time; its numbers are in metrics.jsonl), and the
    SHA-256 of every file written (metrics.jsonl without its timings; not the orbax checkpoints)."""
    folder.mkdir()
    text = (DATA / "wikitext-2-raw" / "wiki.valid.raw").read_text(encoding="utf-8")[:80_000]
    (folder / "a.txt").write_text(text[:40_000], encoding="utf-8")
    (folder / "b.txt").write_text(text[40_000:], encoding="utf-8")
    sst2 = DATA / "SST-2"
    commands = [
        ["pretrain", "--family", "bert", "--size", "tiny", "--objective", "mlm", "--corpus", "a.txt", "b.txt",
         "--workers", "2", "--cased", "--vocab-size", "600", "--seq-len", "32", "--batch-size", "8", "--steps", "6",
         "--warmup", "2", "--log-every", "2", "--output", "bert"],
        ["finetune", "--task", "glue", "--model", "bert", "--train", str(sst2 / "train_full.tsv"), "--eval",
         str(sst2 / "dev.tsv"), "--train-limit", "200", "--eval-limit", "200", "--steps", "6", "--batch-size", "8",
         "--max-length", "32", "--lr", "1e-3", "--log-every", "3", "--eval-every", "3", "--output", "sst2"],
        ["quantize", "sst2", "sst2-int8", "--eval", str(sst2 / "dev.tsv"), "--eval-limit", "200", "--max-length", "32"],
    ]
    env = {**os.environ, "PYTHONHASHSEED": hash_seed, "JAX_PLATFORMS": "cpu"}
    printed = {}
    for command in commands:
        done = subprocess.run([sys.executable, "-m", "minibert", *command], env=env, cwd=folder, capture_output=True,
                              text=True)
        assert done.returncode == 0, done.stderr[-2000:]
        if command[0] != "pretrain":
            printed[command[0]] = done.stdout
    files = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and "checkpoints" not in path.parts:
            content = path.read_bytes()
            if path.name == "metrics.jsonl":
                records = [json.loads(line) for line in content.splitlines()]
                content = json.dumps([{k: v for k, v in r.items() if k != "tokens_per_second"} for r in records])
                content = content.encode()
            files[str(path.relative_to(folder))] = hashlib.sha256(content).hexdigest()
    return {**printed, **files}


@pytest.mark.slow
def test_the_fine_tuning_recipe_gives_the_same_numbers_and_weights_every_time(tmp_path):
    """README numbers are what its commands print: the recipe (pretrain with a trained vocabulary → finetune →
    quantize --eval) is deterministic on one CPU: seeded initialisation, data order, masking and dropout; the
    vocabulary trainer's ties and the shards' order independent of hash seeds and worker scheduling. (Not across
    core counts: XLA's CPU kernels split their sums by the number of threads, which changes the last bits.)"""
    first = recipe_run(tmp_path / "run", "1")
    (tmp_path / "run").rename(tmp_path / "first")      # the second run in the same folder: the same paths recorded
    second = recipe_run(tmp_path / "run", "2")
    assert "bert/model.safetensors" in first and "sst2-int8/model.int8.safetensors" in first
    assert "dev accuracy: float32" in first["quantize"]
    assert first == second
