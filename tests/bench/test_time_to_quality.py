"""bench/time_to_quality.py: the crossing time of a curve, and a tiny run end to end (a small corpus, BERT-tiny,
a few steps of each framework; no timing judged)."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).parents[2] / "bench" / "time_to_quality.py"


def load_bench():
    spec = importlib.util.spec_from_file_location("time_to_quality", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_time_to_reach_interpolates_the_first_crossing():
    bench = load_bench()
    curve = [dict(seconds=s, eval_accuracy=a) for s, a in [(0, 0.0), (10, 0.1), (20, 0.3), (30, 0.2), (40, 0.5)]]
    assert bench.time_to_reach(curve, 0.2) == pytest.approx(15.0, abs=1e-3)   # between 10 s (0.1) and 20 s (0.3)
    assert bench.time_to_reach(curve, 0.0) == 0.0
    assert bench.time_to_reach(curve, 0.6) is None


@pytest.mark.slow
@pytest.mark.parametrize("family", [[], ["--family", "bert"]], ids=["default", "bert"])   # bert: MLM + NSP
def test_tiny_run(tmp_path, family):
    rng = np.random.default_rng(0)
    words = "the a cat dog sat ran on under mat tree big small red house saw ate".split()
    documents = ["\n".join(" ".join(rng.choice(words, 8)) + "." for _ in range(4)) for _ in range(150)]
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n\n".join(documents) + "\n")
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, str(SCRIPT), *family, "--size", "tiny", "--steps", "4", "--minutes", "0.02",
                           "--eval-seconds", "0.5", "--corpus", str(corpus), "--output", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    for name in ("time_to_quality.png", "curves.csv", "table.md", "results.json"):
        assert (out / name).stat().st_size > 0
    rows = [line for line in (out / "table.md").read_text().splitlines() if line.startswith("|")]
    assert len({line.count("|") for line in rows}) == 1                # one column count: the table parses
    assert [line.split("|")[1].strip() for line in rows[2:]] == ["transformers", "minibert", "minibert / transformers"]
    results = json.loads((out / "results.json").read_text())
    runs = results["runs"]
    assert results["target"] == runs["transformers"]["points"][-1]["eval_accuracy"]
    # the same initial weights and held-out batch: the same loss before training, in both frameworks
    assert runs["minibert"]["points"][0]["eval_loss"] == pytest.approx(runs["transformers"]["points"][0]["eval_loss"],
                                                                       abs=5e-4)
    for run in runs.values():
        assert 1 <= run["steps"] <= 4 and run["first_step_seconds"] > 0 and run["pipeline_seconds"] > 0
        assert [p["step"] for p in run["points"]] == sorted({p["step"] for p in run["points"]})
