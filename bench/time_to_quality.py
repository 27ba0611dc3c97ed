"""Time to quality: held-out MLM accuracy against wall-clock training time, minibert vs a `transformers` loop.

    python bench/time_to_quality.py                                    # `minibert pretrain`'s default model
    python bench/time_to_quality.py --family bert --size mini --objective mlm    # BERT-mini (L=4, H=256)
    python bench/time_to_quality.py --minutes 1 --eval-seconds 10 --output /tmp/ttq   # a quick look

One invocation trains the same pretraining job twice, each in a fresh process (the reference first):
- `transformers`: the `transformers` class of the same name as minibert's model (`BertForPreTraining` for MLM +
  NSP, `BertForMaskedLM` for MLM, `ModernBertForMaskedLM` with its own sparse head, `sparse_prediction`), float32,
  SDPA attention, fused AdamW, `torch.set_num_threads(cores)` (`--torch-threads`), eager or `torch.compile`
  (`--reference`), a plain loop: forward, backward, clip, AdamW, step.
  Eager is the default: on this 2-core CPU `torch.compile` took 131 s to compile BERT-tiny's step and ran it no
  faster (2.0 s vs 1.6 s a step, the machine shared with other jobs);
- `minibert`: the jit-compiled step of `minibert.training.loop.Trainer` (the step `minibert pretrain` runs, buffers
  donated, with what it turns on: the sparse MLM head), its compilation counted in the training clock. This
  script's loop drives it (`Trainer.run` evaluates by step count and has no time budget): each step is dispatched
  once the one before the last has finished (`run` lets up to `log_every` run ahead), so that the clock, read on
  the host, is the device's within a step. BERT's reference head predicts every position (`transformers` has no
  sparse one for BERT).
Both start from the same weights (`build` with the run's seed; the reference loads them from minibert's
`save_pretrained`), see the same batches (`batches(step)` of `minibert.training.pretrain.build`: the same
tokenizer, rows and masking; the reference gets the sparse labels scattered back to (batch, seq)), built on a
background thread by the same `training.data.prefetch`, and use the same optimizer: AdamW β = (0.9, 0.999),
ε = 1e-6, weight decay on the parameters of ≥ 2 dimensions only, global-norm clipping, and minibert's learning rate
of every step (`optim.learning_rate_schedule`: warmup, then decay to 0 at `--steps`). Dropout draws differ.

The model, data and optimizer settings are `PretrainConfig()`'s (`minibert pretrain`'s defaults), with `--family`,
`--size`, `--corpus` and `--steps` (the warmup keeps the default's fraction of the steps). Each side trains until its
schedule ends or its training clock reaches `--minutes`. The training clock starts at the first step and stops
during evaluations: every `--eval-seconds` of training, and at the end, the model scores the held-out batch of
`build` (at most 512 rows of the last documents) in eval mode: accuracy = correct / masked tokens over the batch.

Reported (stdout, and under `--output`): both curves (`curves.csv`, `time_to_quality.png`), the target — the
reference's accuracy at its last evaluation — and the training time each side needs to first reach it (linear
interpolation between the two evaluations around the crossing), their ratio, and what explains it: the first
step's time (minibert's compilation), the steady step time ((training time − first step) / (steps − 1), the
input pipeline included) and the host's time to build one batch (`batches(step)`, on the prefetch thread).
"""

from __future__ import annotations

import sys
from pathlib import Path

# `bench/` holds a `tokenize.py` that shadows the standard library's (which jax and torch import): keep this
# folder off the import path, and put the repository on it instead.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE] + [str(_HERE.parent)]

import argparse  # noqa: E402
import csv  # noqa: E402
import dataclasses  # noqa: E402
import datetime  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from minibert import presets  # noqa: E402

ROOT = _HERE.parent
SIDES = ("transformers", "minibert")              # run in this order: the reference sets the target
PIPELINE_SAMPLES = 5                              # batches timed for the host's time per batch


# ---------------------------------------------------------------- the job both sides train

def pretrain_config(args):
    """`PretrainConfig()` with the run's family, size, corpus, steps (warmup scaled with them) and output."""
    from minibert.training.pretrain import PretrainConfig

    default = PretrainConfig()
    if default.train.grad_accumulation != 1:
        raise SystemExit("the reference loop takes one batch per update: set grad_accumulation 1")
    steps = args.steps or default.train.steps
    warmup = round(default.train.warmup_steps * steps / default.train.steps)       # the default's fraction
    train = dataclasses.replace(default.train, steps=steps, warmup_steps=warmup, output_dir=str(args.output / "run"))
    return dataclasses.replace(default, family=args.family or default.family, size=args.size or default.size,
                               objective=args.objective, corpus=args.corpus, train=train)


def describe(config, model_config) -> str:
    """The job in one line: model, data, objective, masking, optimizer, dtype."""
    from minibert.training.pretrain import plan

    p, c, t = plan(config), model_config, config.train
    return (f"{config.family}-{config.size} (L={c.num_hidden_layers}, H={c.hidden_size}, vocabulary {c.vocab_size}), "
            f"seq {config.seq_len} × batch {config.batch_size}, {p.objective}, masking {p.mask_rate:.0%}, "
            f"lr {t.learning_rate:g} over {t.steps} steps (warmup {t.warmup_steps}, {t.decay} decay), "
            f"weight decay {t.weight_decay:g}, clip {t.clip_norm:g}, {config.dtype}")


def build_job(config):
    """`build(config)` → (minibert's initial model, batches, held-out batch, the job in one line)."""
    from minibert.training.pretrain import build

    model, _, batches, eval_batch = build(config)
    if eval_batch is None:
        raise ValueError(f"the corpus holds too few documents to hold out an evaluation batch "
                         f"({config.held_out_documents:.0%} of them are held out)")
    return model, batches, eval_batch, describe(config, model.config)


class TrainingClock:
    """Seconds of training: runs from the first step, paused while the model is evaluated."""

    def __init__(self):
        self.total, self.since = 0.0, time.perf_counter()

    def now(self) -> float:
        return self.total + time.perf_counter() - self.since

    def pause(self) -> float:
        self.total = self.now()
        return self.total

    def resume(self) -> None:
        self.since = time.perf_counter()


def train_on_the_clock(feed, step, synchronize, evaluate, steps: int, budget: float, every: float) -> dict:
    """Run step(s, batch) for s = 0 … steps − 1 on `feed`'s batches until `budget` seconds of training;
    evaluate() → (loss, accuracy) before the first step, every `every` seconds and at the end (each after
    synchronize(), the clock paused). Returns the points (seconds, step, loss, accuracy) and the timings."""
    loss, accuracy = evaluate()
    points = [dict(seconds=0.0, step=0, eval_loss=loss, eval_accuracy=accuracy)]
    print(f"  {0:7.1f} s  step {0:6d}  held-out accuracy {accuracy:.4f}  loss {loss:.3f}", flush=True)
    clock, first_step, done, next_eval = TrainingClock(), None, 0, every
    for s, batch in zip(range(steps), feed):
        step(s, batch)
        done = s + 1
        if first_step is None:                     # compilation (minibert, torch.compile) + one step
            synchronize()
            first_step = clock.now()
        elapsed = clock.now()
        if elapsed >= next_eval or elapsed >= budget or done == steps:
            synchronize()
            seconds = clock.pause()
            loss, accuracy = evaluate()
            points.append(dict(seconds=seconds, step=done, eval_loss=loss, eval_accuracy=accuracy))
            print(f"  {seconds:7.1f} s  step {done:6d}  held-out accuracy {accuracy:.4f}  loss {loss:.3f}", flush=True)
            if seconds >= budget:
                break
            next_eval = seconds + every
            clock.resume()
    seconds = points[-1]["seconds"]
    steady = (seconds - first_step) / (done - 1) if done > 1 else first_step
    return dict(points=points, steps=done, first_step_seconds=first_step, steady_step_seconds=steady)


def pipeline_seconds(make) -> float:
    """The host's mean time to build one batch, over PIPELINE_SAMPLES steps (before the clock starts)."""
    start = time.perf_counter()
    for s in range(PIPELINE_SAMPLES):
        make(s)
    return (time.perf_counter() - start) / PIPELINE_SAMPLES


# ---------------------------------------------------------------- the workers (one process per side)

def run_minibert(args, config) -> dict:
    import jax

    from minibert.training.data import prefetch
    from minibert.training.loop import Trainer

    model, batches, eval_batch, job = build_job(config)
    trainer = Trainer(model, config.train, batches, eval_batch)
    metrics = {}

    def step(s, batch):                             # the compiled step of `Trainer.run`, buffers donated
        previous = metrics.get("last")
        trainer.state, metrics["last"] = trainer._train_step(trainer.state, trainer.rng_state, batch, s)
        if previous is not None:                    # one step queued at most: the clock reads the device's time
            jax.block_until_ready(previous)

    def evaluate():
        result = trainer.evaluate()
        return result["eval_loss"], result["eval_accuracy"]

    per_batch = pipeline_seconds(lambda s: trainer._put(batches(s)))
    steps = range(config.train.steps)
    result = train_on_the_clock(prefetch(batches, steps, trainer._put), step,
                                lambda: jax.block_until_ready((trainer.state, metrics)), evaluate,
                                config.train.steps, 60 * args.minutes, args.eval_seconds)
    return dict(result, job=job, pipeline_seconds=per_batch,
                engine=f"jax {jax.__version__} (jit, XLA:{jax.default_backend()})")


def run_transformers(args, config) -> dict:
    import inspect

    import jax
    import torch
    import transformers

    from bench.train_throughput import dense
    from minibert.training.data import prefetch
    from minibert.training.optim import learning_rate_schedule

    torch.set_num_threads(args.torch_threads)
    model, batches, eval_batch, job = build_job(config)
    name = type(model).__name__
    if not hasattr(transformers, name):
        raise SystemExit(f"transformers has no {name}: no reference for family {config.family!r}")
    init = Path(config.train.output_dir) / "initial-model"
    model.save_pretrained(init)                     # the weights minibert's run starts from (same seed)
    del model
    options = {"sparse_prediction": True} if name == "ModernBertForMaskedLM" else {}   # its own sparse MLM head
    reference = getattr(transformers, name).from_pretrained(init, attn_implementation="sdpa", **options).train()
    accepted = set(inspect.signature(reference.forward).parameters)
    t = config.train
    rates = np.asarray(jax.vmap(learning_rate_schedule(t.learning_rate, t.steps, t.warmup_steps, t.decay))(
        np.arange(t.steps)))                        # minibert's learning rate of every step (optax counts from 0)
    decay = [p for p in reference.parameters() if p.ndim >= 2]
    no_decay = [p for p in reference.parameters() if p.ndim < 2]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": t.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}],
                                  lr=float(rates[0]), betas=(0.9, 0.999), eps=1e-6, fused=True)
    forward = torch.compile(reference) if args.reference == "compile" else reference

    def to_torch(batch) -> dict:
        """A minibert batch as `transformers` takes it: sparse labels scattered back to (batch, seq), -100 elsewhere
        (`train_throughput.dense`)."""
        arrays = dense(batch) if "masked_positions" in batch else dict(batch.items())
        return {k: torch.from_numpy(np.asarray(v, np.int64)) for k, v in arrays.items() if k in accepted}

    def step(s, batch):
        for group in optimizer.param_groups:
            group["lr"] = float(rates[s])
        forward(**batch).loss.backward()
        torch.nn.utils.clip_grad_norm_(reference.parameters(), t.clip_norm)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    eval_chunks = [to_torch(jax.tree.map(lambda x: x[i:i + config.batch_size], eval_batch))
                   for i in range(0, len(eval_batch["input_ids"]), config.batch_size)]

    @torch.no_grad()
    def evaluate():
        """As `Trainer.evaluate`: chunks of the training batch's rows, each weighted by its masked tokens."""
        reference.eval()
        losses, correct, masked = [], 0, []
        for chunk in eval_chunks:
            out = reference(**chunk)
            logits = out.prediction_logits if hasattr(out, "prediction_logits") else out.logits
            scored = chunk["labels"] >= 0
            predicted = logits.argmax(-1)           # (masked tokens,) from a sparse head, else (batch, seq)
            if predicted.ndim == 2:
                predicted = predicted[scored]
            correct += int((predicted == chunk["labels"][scored]).sum())
            losses.append(float(out.loss))
            masked.append(int(scored.sum()))
        reference.train()
        return float(np.average(losses, weights=np.maximum(masked, 1))), correct / max(sum(masked), 1)

    per_batch = pipeline_seconds(lambda s: to_torch(batches(s)))
    steps = range(t.steps)
    result = train_on_the_clock(prefetch(batches, steps, to_torch), step, lambda: None, evaluate, t.steps,
                                60 * args.minutes, args.eval_seconds)
    mode = "torch.compile" if args.reference == "compile" else "eager"
    return dict(result, job=job, pipeline_seconds=per_batch,
                engine=f"torch {torch.__version__} ({mode}, SDPA, fused AdamW, {torch.get_num_threads()} threads), "
                       f"transformers {transformers.__version__}")


def worker(args) -> None:
    """One side's run, written to OUTPUT/<side>.json. Bad input (a corpus that is missing or too small, …): one
    line, as `minibert pretrain` says it."""
    config = pretrain_config(args)
    try:
        result = (run_minibert if args.worker == "minibert" else run_transformers)(args, config)
    except (ValueError, OSError) as error:         # CorpusError is a ValueError, FileNotFoundError an OSError
        raise SystemExit(f"{args.worker}: error: {error}") from None
    (args.output / f"{args.worker}.json").write_text(json.dumps(result, indent=1))


# ---------------------------------------------------------------- the orchestrator

TOLERANCE = 1e-6        # accuracies equal up to float32 rounding (minibert averages its chunks in float32)


def time_to_reach(points: list[dict], target: float) -> float | None:
    """The training seconds at which the curve first reaches `target` (less TOLERANCE): linear interpolation
    between the last evaluation below it and the first at or above it; None if it never does."""
    target -= TOLERANCE
    for before, after in zip(points, points[1:]):
        if after["eval_accuracy"] >= target:
            a0, a1, t0, t1 = before["eval_accuracy"], after["eval_accuracy"], before["seconds"], after["seconds"]
            return t0 if a0 >= target else t0 + (target - a0) / (a1 - a0) * (t1 - t0)
    return None


def table(runs: dict[str, dict]) -> tuple[str, float, dict]:
    """The Markdown table of both sides; the target accuracy and each side's time to reach it."""
    target = runs["transformers"]["points"][-1]["eval_accuracy"]
    reach = {side: time_to_reach(run["points"], target) for side, run in runs.items()}
    seconds = lambda x: "not reached" if x is None else f"{x:,.1f} s"
    lines = [f"| | accuracy at the end | training time | steps | time to reach {target:.4f} | first step (compile) "
             "| steady step | batch on the host |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for side, run in runs.items():
        end = run["points"][-1]
        lines.append(f"| {side} | {end['eval_accuracy']:.4f} | {end['seconds']:,.1f} s | {run['steps']:,} "
                     f"| {seconds(reach[side])} | {run['first_step_seconds']:.2f} s "
                     f"| {1000 * run['steady_step_seconds']:.1f} ms | {1000 * run['pipeline_seconds']:.1f} ms |")
    m, r = runs["minibert"], runs["transformers"]
    ratio = lambda a, b: "–" if a is None or not b else f"{a / b:.2f}"       # – where the reference took no time
    lines.append(f"| minibert / transformers | | | | {ratio(reach['minibert'], reach['transformers'])} "
                 f"| | {ratio(m['steady_step_seconds'], r['steady_step_seconds'])} "
                 f"| {ratio(m['pipeline_seconds'], r['pipeline_seconds'])} |")
    return "\n".join(lines), target, reach


def plot(runs: dict[str, dict], target: float, title: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4.5))
    for side, run in runs.items():
        minutes = [p["seconds"] / 60 for p in run["points"]]
        axes.plot(minutes, [p["eval_accuracy"] for p in run["points"]], marker=".", label=side)
    axes.axhline(target, color="grey", linestyle=":", label=f"target {target:.4f}")
    axes.set(xlabel="training time (minutes; compilation included, evaluation excluded)",
             ylabel="held-out MLM accuracy", title=title)
    axes.ticklabel_format(axis="y", useOffset=False)
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def machine() -> str:
    """"CPU: N cores <model name>" (Linux's /proc/cpuinfo; elsewhere the platform's processor string)."""
    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.exists() else []
    name = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")),
                platform.processor())
    return f"CPU: {os.cpu_count()} cores {name}".rstrip()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--family", help="the model family (default: PretrainConfig's)")
    parser.add_argument("--size", help="the family's model size (default: PretrainConfig's); BERT-mini: "
                        "--family bert --size mini")
    parser.add_argument("--objective", help="mlm or mlm+nsp (default: the family's; BertForMaskedLM: mlm)")
    parser.add_argument("--minutes", type=float, default=10.0, help="each side's training budget (default 10)")
    parser.add_argument("--eval-seconds", type=float, default=30.0,
                        help="training seconds between evaluations (default 30)")
    parser.add_argument("--steps", type=int, help="the schedule's steps (default: PretrainConfig's)")
    parser.add_argument("--corpus", nargs="+", help="text files (default: the embedded corpus)")
    parser.add_argument("--reference", choices=["eager", "compile"], default="eager",
                        help="the transformers model eager or under torch.compile (default eager: the faster on "
                             "this CPU)")
    parser.add_argument("--torch-threads", type=int, default=os.cpu_count(),
                        help="torch's intra-op threads (default: every core; on a CPU shared with other jobs, "
                             "fewer can be much faster)")
    parser.add_argument("--output", type=Path, help="default: runs/time-to-quality-FAMILY-SIZE")
    parser.add_argument("--worker", choices=SIDES, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args)

    from minibert.training.pretrain import PretrainConfig
    default = PretrainConfig()
    family, size = args.family or default.family, args.size or default.size
    try:
        presets.preset(family, size)
    except ValueError as error:
        parser.error(str(error))
    if args.minutes <= 0 or args.eval_seconds <= 0 or (args.steps is not None and args.steps < 1):
        parser.error("--minutes and --eval-seconds must be positive, --steps at least 1")
    if args.torch_threads < 1:
        parser.error("--torch-threads must be at least 1")
    args.output = args.output or ROOT / "runs" / f"time-to-quality-{family}-{size}"
    args.output.mkdir(parents=True, exist_ok=True)
    forwarded = sys.argv[1:] if argv is None else list(argv)
    runs, load = {}, [os.getloadavg()[0]]
    for side in SIDES:
        print(f"--- {side}", flush=True)
        command = [sys.executable, __file__, *forwarded, "--output", str(args.output), "--worker", side]
        if subprocess.run(command, cwd=ROOT).returncode:
            sys.exit(f"the {side} run failed (its error is above)")
        runs[side] = json.loads((args.output / f"{side}.json").read_text())

    load.append(os.getloadavg()[0])
    markdown, target, reach = table(runs)
    job = runs["minibert"]["job"]
    plot(runs, target, f"{job.split(' (')[0]}, {datetime.date.today()}", args.output / "time_to_quality.png")
    with (args.output / "curves.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, ["side", "seconds", "step", "eval_loss", "eval_accuracy"])
        writer.writeheader()
        writer.writerows({"side": side, **p} for side, run in runs.items() for p in run["points"])
    start = {side: run["points"][0] for side, run in runs.items()}
    engines = f"{runs['minibert']['engine']}; {runs['transformers']['engine']}"
    header = [f"{datetime.date.today()} · {machine()}, load average {load[0]:.1f} before the runs and {load[1]:.1f} "
              f"after · {engines}",
              f"command: python bench/{Path(__file__).name} {' '.join(forwarded)}", "",
              f"{job}; budget {args.minutes:g} min each, evaluation every {args.eval_seconds:g} s of training on the "
              f"same held-out batch. Before training (the same weights): held-out loss "
              f"{start['minibert']['eval_loss']:.4f} (minibert) vs {start['transformers']['eval_loss']:.4f} "
              f"(transformers). Target: the reference's accuracy at its last evaluation, {target:.4f}.", ""]
    report = "\n".join([*header, markdown, ""])
    (args.output / "table.md").write_text(report)
    (args.output / "results.json").write_text(json.dumps(
        {"target": target, "time_to_reach": reach, "runs": runs, "command": forwarded}, indent=1))
    print("\n" + report + f"\nplot: {args.output / 'time_to_quality.png'}; points: {args.output / 'curves.csv'}")


if __name__ == "__main__":
    main()
