"""Plot a run's `metrics.jsonl` (training loss, held-out MLM accuracy) — for notebooks; needs matplotlib."""

import json
from pathlib import Path


def read_metrics(run_dir) -> list[dict]:
    return [json.loads(line) for line in (Path(run_dir) / "metrics.jsonl").read_text().splitlines() if line]


def plot_metrics(run_dir, ax=None):
    """Training loss against step, with held-out MLM accuracy on a second axis when it was measured."""
    import matplotlib.pyplot as plt

    records = read_metrics(run_dir)
    ax = ax or plt.subplots(figsize=(6, 3.5))[1]
    ax.plot([r["step"] for r in records], [r["loss"] for r in records], label="training loss")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    evaluated = [r for r in records if "eval_accuracy" in r]
    if evaluated:
        right = ax.twinx()
        right.plot([r["step"] for r in evaluated], [r["eval_accuracy"] for r in evaluated], "o-", color="tab:orange",
                   label="held-out MLM accuracy")
        right.set_ylabel("accuracy")
    ax.set_title(Path(run_dir).name)
    return ax
