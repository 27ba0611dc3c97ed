"""bench/ablations.py: the verdict of a Δ against the seeds' spread, an RTD row without held-out MLM numbers, and the
smoke run end to end (BERT-tiny, baseline and RTD objective, one seed, 4 steps on WikiText-2, each fine-tuned on 32
SST-2 sentences; no timing judged)."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parents[2] / "bench" / "ablations.py"
WIKITEXT = Path(__file__).parents[3] / "shared" / "data" / "wikitext-2-raw"
SST2 = Path(__file__).parents[3] / "shared" / "data" / "SST-2"


def load_bench():
    spec = importlib.util.spec_from_file_location("ablations", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module           # (its dataclasses look their module up there)
    spec.loader.exec_module(module)
    return module


def record(variant, seed, loss, budget="tokens", sst2=0.8):
    held_out = dict(eval_loss=None, eval_accuracy=None, curve=[]) if loss is None else \
        dict(eval_loss=loss, eval_accuracy=0.1, curve=[(1.0, loss)])
    return dict(variant=variant, budget=budget, seed=seed, steps=10, parameters=100, flops_per_token=1e6, **held_out,
                sst2_accuracy=sst2)


TIMES = {"baseline": 0.1, "pre-LN": 0.1, "RoPE": 0.1, "RTD objective": 0.2}


def test_a_delta_is_real_only_beyond_two_standard_errors():
    bench = load_bench()
    runs = [record("baseline", s, loss) for s, loss in enumerate([5.0, 5.1, 4.9])]
    runs += [record("pre-LN", s, loss) for s, loss in enumerate([4.5, 4.6, 4.4])]      # Δ −0.5, spread 0.1
    runs += [record("RoPE", s, loss) for s, loss in enumerate([4.95, 5.15, 4.85])]    # Δ −0.017: noise
    rows = {r["variant"]: r for r in bench.summarise(runs, ["baseline", "pre-LN", "RoPE"], TIMES)
            if r["budget"] == "tokens"}
    assert rows["pre-LN"]["delta"] == pytest.approx(-0.5) and rows["pre-LN"]["verdict"] == "real"
    assert rows["RoPE"]["verdict"] == "within noise" and rows["baseline"]["verdict"] == "—"
    assert "| tokens | pre-LN | 100 | 1.0 | 10 | 100 | 4.500 ± 0.100 |" in bench.table(list(rows.values()))
    assert [r["steps"] for r in bench.summarise(runs, ["baseline"], {"baseline": 0.1})] == [10, 10]


def test_an_rtd_row_is_judged_by_sst2_alone():
    bench = load_bench()
    runs = [record("baseline", s, 5.0 + s / 10, sst2=acc) for s, acc in enumerate([0.70, 0.71, 0.69])]
    runs += [record("RTD objective", s, None, sst2=acc) for s, acc in enumerate([0.75, 0.76, 0.74])]  # +0.05
    rtd = next(r for r in bench.summarise(runs, ["baseline", "RTD objective"], TIMES) if r["variant"] != "baseline")
    assert rtd["loss"] is None and rtd["sst2_delta"] == pytest.approx(0.05) and rtd["sst2_verdict"] == "real"
    assert "| 200 | — | — | — | — | 0.750 ± 0.010 | +0.050 | real |" in bench.table([rtd])


@pytest.mark.slow
def test_smoke_run(tmp_path):
    if not (WIKITEXT / "wiki.test.raw").is_file() or not (SST2 / "dev.tsv").is_file():
        pytest.skip("../shared/data/wikitext-2-raw or ../shared/data/SST-2 is absent")
    command = [sys.executable, str(SCRIPT), "--smoke", "--data", str(WIKITEXT), "--sst2", str(SST2),
               "--output", str(tmp_path)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    runs = [json.loads(line) for line in (tmp_path / "runs.jsonl").read_text().splitlines()]
    assert [(r["variant"], r["budget"]) for r in runs][:2] == [("baseline", "tokens"), ("RTD objective", "tokens")]
    assert set(json.loads((tmp_path / "step_times.json").read_text())) == {"baseline", "RTD objective"}
    assert all(r["parameters"] > 0 and r["flops_per_token"] > 0 for r in runs)
    assert runs[0]["eval_loss"] > 0 and runs[1]["eval_loss"] is None and runs[1]["curve"] == []
    scores = [json.loads(line) for line in (tmp_path / "downstream.jsonl").read_text().splitlines()]
    assert len(scores) == len(runs) and all(0 <= s["sst2_accuracy"] <= 1 for s in scores)
    assert "| tokens | RTD objective |" in (tmp_path / "table.md").read_text()
    assert (tmp_path / "ablations.png").is_file()
    again = subprocess.run(command, capture_output=True, text=True, timeout=600)   # finished work is not redone
    assert again.returncode == 0 and len((tmp_path / "runs.jsonl").read_text().splitlines()) == len(runs)
    assert len((tmp_path / "downstream.jsonl").read_text().splitlines()) == len(scores)


def test_missing_data_is_one_clear_error(tmp_path):
    done = subprocess.run([sys.executable, str(SCRIPT), "--smoke", "--data", str(tmp_path), "--output", str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "holds no wiki.valid.raw" in done.stderr and "Traceback" not in done.stderr
    if (WIKITEXT / "wiki.test.raw").is_file():
        done = subprocess.run([sys.executable, str(SCRIPT), "--smoke", "--data", str(WIKITEXT), "--sst2", str(tmp_path),
                               "--output", str(tmp_path)], capture_output=True, text=True, timeout=120)
        assert done.returncode == 2 and "holds no train_full.tsv" in done.stderr and "Traceback" not in done.stderr
