"""bench/train_throughput.py: the FLOP formula against known parameter counts, and the `--smoke` run end to end
(tiny configs on the CPU, every family and objective, minibert and transformers rows; no timing judged)."""

import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).parents[2] / "bench" / "train_throughput.py"


def load_bench():
    spec = importlib.util.spec_from_file_location("train_throughput", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module             # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_flop_formula_matches_the_published_sizes():
    bench = load_bench()
    bert = bench.matmul_parameters(bench.CONFIGS["bert-base-128-b128-mlm+nsp"])
    assert bert["token"] == 12 * (4 * 768**2 + 2 * 768 * 3072)             # BERT-base: 85M non-embedding weights
    assert bert["prediction"] == 768**2 + 768 * 30528 and bert["sequence"] == 768**2 + 2 * 768
    modern = bench.matmul_parameters(bench.CONFIGS["modernbert-base-1024-wiki"])
    assert math.isclose(modern["token"], 22 * (4 * 768**2 + 3 * 768 * 1152))
    # ModernBERT-base has 149M parameters: the encoder + the tied 50368 × 768 embeddings + the head's transform
    assert 148e6 < modern["token"] + modern["prediction"] < 150e6
    full = bench.CONFIGS["bert-base-128-b128-mlm"]
    lengths = np.full(128, 128)
    per_token = bench.step_flops(full, lengths, predictions=0) / lengths.sum()
    assert per_token == 6 * bert["token"] + 12 * 12 * 768 * 128                 # 6·N + 12·L·d·T
    local = bench.attended_pairs(bench.CONFIGS["modernbert-base-1024-wiki"], np.array([1000]))
    assert local == 8 * 1000**2 + 14 * 1000 * 128                                # 8 global layers of 22, window 128


def test_sparse_batches_turn_back_into_the_dense_labels():
    bench = load_bench()
    config = bench.SMOKE_CONFIGS["bert-tiny-32-b8-mlm+nsp"]
    batch = bench.staged_batches(config, None)[0]
    dense = bench.dense(batch)
    assert dense["labels"].shape == batch["input_ids"].shape and "masked_positions" not in dense
    assert (dense["labels"] != -100).sum() == (batch["labels"] != -100).sum() > 0
    masked = dense["labels"] != -100
    assert (batch["input_ids"][masked] != bench.PAD).all()


@pytest.mark.slow
def test_smoke_run(tmp_path):
    rows_file = tmp_path / "rows.json"
    done = subprocess.run([sys.executable, str(SCRIPT), "--smoke", "--steps", "1", "--warmup", "1",
                           "--json", str(rows_file)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = json.loads(rows_file.read_text())
    bench = load_bench()
    expected = {(name, impl) for name, config in bench.SMOKE_CONFIGS.items()
                for impl in ("minibert", "torch-eager") if impl == "minibert" or config.torch_class}
    assert {(r["config"], r["impl"]) for r in rows} == expected
    for r in rows:
        assert r["tokens"] > 0 and r["flops"] > 0 and r["seconds"] > 0 and np.isfinite(r["loss"])
        assert abs(r["loss"] - np.log(1024)) < 1.0                               # an untrained model's loss
    assert "| modernbert-tiny-64-wiki | minibert |" in done.stdout
