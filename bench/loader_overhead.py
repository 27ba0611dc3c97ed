"""Is the loader ever the bottleneck? The training step fed by the real loader vs the same step on one fixed batch
already on the device, same run.

    python bench/loader_overhead.py --data DIR [--size mini] [--seq-len 128] [--batch-size 32] [--steps 10]

DIR is a corpus prepared by `minibert prepare` (e.g. the 40 MB one of `bench/prepare_scale.py`). Both variants run
the `Trainer`'s own compiled step (`minibert pretrain`'s, sparse MLM head) on the same model and state:
- **loader**: what `Trainer.run` does — `Batches` (grain: per-step examples from the shards (positional reads),
  masking) on the prefetch thread, two steps ahead, each batch assembled into global arrays and transferred;
- **fixed**: the first batch, transferred once, reused every step.
Both are timed over `--steps` steps after 2 warm-up steps, between two device synchronisations, interleaved
`--repeat` times; the table gives the mean step of each and the overhead, loader / fixed − 1 (target: under 5%).
It also times building one batch on its own (no model), which is what the prefetch thread must hide.
"""

from __future__ import annotations

import sys
from pathlib import Path

# `bench/` holds a `tokenize.py` that shadows the standard library's: keep this folder off the import path.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE] + [str(_HERE.parent)]

import argparse  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import jax  # noqa: E402
import numpy as np  # noqa: E402

from minibert.training.data import prefetch  # noqa: E402
from minibert.training.loop import TrainConfig, Trainer  # noqa: E402
from minibert.training.pretrain import PretrainConfig, build  # noqa: E402


def timed(trainer: Trainer, batches, steps: range) -> float:
    """Mean seconds per step over `steps`, fed by `batches(step)` through the prefetch thread as Trainer.run does."""
    state = trainer.state
    jax.block_until_ready(state)
    start = time.perf_counter()
    for step, batch in zip(steps, prefetch(batches, steps, trainer._put)):
        state, metrics = trainer._train_step(state, trainer.rng_state, batch, step)
    jax.block_until_ready(metrics["loss"])
    trainer.state = state
    return (time.perf_counter() - start) / len(steps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="a prepared corpus")
    parser.add_argument("--size", default="mini")
    parser.add_argument("--objective", default="mlm+nsp")
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()

    output = tempfile.mkdtemp(prefix="loader-overhead-")
    config = PretrainConfig(family="bert", size=args.size, objective=args.objective, data=args.data,
                            seq_len=args.seq_len, batch_size=args.batch_size,
                            train=TrainConfig(steps=10_000, output_dir=output))
    model, _, batches, _ = build(config)
    trainer = Trainer(model, config.train, batches)

    start = time.perf_counter()
    for step in range(20):
        batches(1000 + step)
    build_time = (time.perf_counter() - start) / 20

    fixed_batch = trainer._put(batches(0))
    fixed = lambda step: fixed_batch            # noqa: E731  (already global, already on the device)
    loader_times, fixed_times, step = [], [], 0
    timed(trainer, batches, range(step, step + 2))                                  # warm-up (compiles)
    step += 2
    for _ in range(args.repeat):
        loader_times.append(timed(trainer, batches, range(step, step + args.steps)))
        step += args.steps
        put, trainer._put = trainer._put, lambda batch: batch                       # no transfer: it is there
        fixed_times.append(timed(trainer, fixed, range(step, step + args.steps)))
        trainer._put = put
        step += args.steps
    loader, fixed_mean = float(np.mean(loader_times)), float(np.mean(fixed_times))
    print(f"{time.strftime('%Y-%m-%d')} · {platform.processor() or platform.machine()}, {os.cpu_count()} cores · "
          f"jax {jax.__version__} · BERT-{args.size} {args.objective} seq {args.seq_len} batch {args.batch_size}")
    print("| variant | step (mean of runs) | runs |")
    print("|---|---:|---|")
    print(f"| real loader (prefetch) | {1000 * loader:.1f} ms | {', '.join(f'{1000 * t:.1f}' for t in loader_times)} |")
    print(f"| fixed batch on device | {1000 * fixed_mean:.1f} ms | {', '.join(f'{1000 * t:.1f}' for t in fixed_times)} |")
    print(f"overhead: {100 * (loader / fixed_mean - 1):+.1f}% · building one batch alone: {1000 * build_time:.1f} ms")


if __name__ == "__main__":
    main()
