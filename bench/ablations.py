"""One idea at a time: what each idea of the BERT family buys a small encoder, on the same data and budget.

    python bench/ablations.py --output runs/ablations            # the table in bench/RESULTS.md (2 CPU cores)
    python bench/ablations.py --smoke --output /tmp/ablations    # CI: BERT-tiny, two variants, one seed, 4 steps
    python bench/ablations.py --size base --seq-len 128 --batch-size 256 --steps 20000 --dtype bfloat16 \
        --output runs/ablations-base                             # a researcher's GPU/TPU run (not yet measured)

Every variant is the composable encoder (`minibert/models/flex.py`, `--family flex`) with one field changed from
the baseline: BERT (Devlin et al. 2019) — post-LN, learned absolute positions, GELU MLP, biases, token types, 15%
masking — at `--size` (default tiny: L=2, H=128, Turc et al. 2019; 200 updates of 32 × 64 tokens). BERT-mini
(`--size mini`, L=4, H=256) is the issue's baseline, but it does not fit the hour on 2 CPU cores: 0.95 s a step,
so 120 updates a run and about 2.5 hours for the table (another job sharing the CPU), and at 120 updates it still
answers "the" to every mask. The data is WikiText-2 (Merity et al. 2016):
its validation split to train on, its test split held out (both prepared once into OUTPUT/data with one WordPiece
vocabulary trained on the validation split; the held-out documents are exactly the test split's, scored on at most
512 rows masked at 15% whatever the training rate, `pretrain.EVAL_MASK_RATE`).

Each variant trains `--seeds` times (seed = initialisation, masking and data order) under two budgets:
- **tokens**: `--steps` updates of `--batch-size` × `--seq-len` tokens, as the baseline;
- **time**: the baseline's training time (its steps × its step time), spent at the variant's own
  step time: steps = baseline time / variant step time (a variant within 10% of the baseline's step time, the
  timing noise of a shared CPU, reuses its token run).
Reported per variant and budget (`table.md`, stdout): parameters; forward FLOPs per token (XLA's count of the
compiled forward at (batch, seq), the MLM head over every position); step time (a timing run of 60 updates per
variant after the training runs, the variants one after the other: the median of the logged intervals after the
first, compilation and evaluation excluded, batch × seq / tokens_per_second); held-out MLM loss and
accuracy, mean ± std over seeds; and Δ loss against the baseline with its verdict: "real" when
|Δ| > 2·√(s²_variant/n + s²_baseline/n) (two standard errors of the difference), else "within noise". The
plot (`ablations.png`) draws held-out loss against training time (step × step time) for every run.

A run writes one line to `OUTPUT/runs.jsonl` when it ends; run the same command again and it continues with the
runs not there yet (finished work is never redone or lost). The paper's own claim sits beside each idea in
`VARIANTS`; bench/RESULTS.md says where the small-scale result agrees.
"""

from __future__ import annotations

import sys
from pathlib import Path

# `bench/` holds a `tokenize.py` that shadows the standard library's: keep this folder off the import path.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE] + [str(_HERE.parent)]

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import datetime  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import shutil  # noqa: E402

import numpy as np  # noqa: E402


@dataclasses.dataclass(frozen=True)
class Variant:
    overrides: str            # FlexConfig fields changed from the baseline (update_from_string syntax)
    claim: str                # what the paper that introduced the idea reports
    mask_rate: float = 0.15


VARIANTS = {
    "baseline": Variant("", "BERT (Devlin et al. 2019, §3): post-LN, learned positions, GELU MLP, 15% masking"),
    "pre-LN": Variant("norm=pre", "Xiong et al. 2020, §4: pre-LN trains faster and without warmup than post-LN"),
    "RoPE": Variant("positions=rope", "Su et al. 2021 (RoFormer) §4.5.2: lower MLM loss than learned positions "
                                      "at the same steps"),
    "ALiBi": Variant("positions=alibi", "Press et al. 2022 §4; MosaicBERT (Portes et al. 2023, Table S1): no loss "
                                        "of quality at the training length, and extrapolation beyond it"),
    "GLU": Variant("ffn=glu", "Shazeer 2020, Table 1: GLU variants reach lower perplexity than ReLU/GELU FFNs"),
    "GeGLU": Variant("ffn=geglu", "Shazeer 2020, Table 1: GeGLU the best of them; ModernBERT (Warner et al. 2024) "
                                  "§2.1.1 adopts it"),
    "30% masking": Variant("", "Wettig et al. 2023; MosaicBERT §2.2: 30% masking beats 15% for base models",
                           mask_rate=0.3),
    "local/global": Variant("attention=local_global,local_attention=16,global_attn_every_n_layers=2",  # 8 each side
                            "ModernBERT §2.1.2: local windows on most layers cost little quality and save time on "
                            "long inputs"),
    "span-conv heads": Variant("span_conv_kernel=9", "ConvBERT (Jiang et al. 2020), Table 2/3: mixed attention "
                                                     "(half the heads span-based convolution) beats self-attention "
                                                     "alone at lower cost"),
    "no biases": Variant("bias=false", "ModernBERT §2.1.1 (after Dayma et al.): no quality lost, parameters "
                                       "spent elsewhere"),
    "unpadding": Variant("unpad=true", "MosaicBERT §2.1; ModernBERT §2.1.3: the same function, faster on padded "
                                       "batches (for speed only)"),
}
NOT_YET = {   # the other variants: the composable encoder does not express them yet
    "bottleneck + stacked FFNs": "MobileBERT's bottlenecks are not a Flex choice yet",
    "RTD objective": "Flex trains with it (`--objective rtd`, FlexPretrainer), but what RTD buys is the "
                     "discriminator's, which a held-out MLM loss does not score (it is the small generator's): it "
                     "needs a downstream score, e.g. SST-2 after fine-tuning, not in this table yet",
}
SMOKE = ("baseline", "pre-LN")
SAME_SPEED = 0.10     # a step time within 10% of the baseline's (a CPU's timing noise): the token run serves both


def prepare_wikitext(source: Path, output: Path) -> tuple[Path, float]:
    """WikiText-2's validation then test split in one prepared corpus (a vocabulary trained on the validation split
    only); returns it and the `held_out_documents` fraction that holds out exactly the test split's documents."""
    from minibert.training.prepare import PrepareConfig, prepare

    vocab = output / "vocab"
    if not (vocab / "manifest.json").is_file():           # the vocabulary: the validation split's alone
        prepare(PrepareConfig(corpus=[str(source / "wiki.valid.raw")], output=str(vocab), vocab_size=8000,
                              workers=1, progress=False))
    data = output / "data"
    prepare(PrepareConfig(corpus=[str(source / "wiki.valid.raw"), str(source / "wiki.test.raw")], output=str(data),
                          vocab=str(vocab / "tokenizer"), workers=1, progress=False))
    shards = sorted((data / "shards").glob("shard-*.json"))
    documents = [json.loads(p.read_text())["documents"] for p in shards]   # one shard per file, in corpus order
    return data, (documents[-1] + 0.5) / sum(documents)


def forward_flops_per_token(model, batch_size: int, seq_len: int) -> float:
    """XLA's FLOP count of the compiled forward pass on a (batch, seq) batch without padding, per token."""
    import jax
    import jax.numpy as jnp
    from flax import nnx

    graph, state = nnx.split(model)
    forward = lambda state, ids, mask: nnx.merge(graph, state)(input_ids=ids, attention_mask=mask).logits
    ids = jnp.zeros((batch_size, seq_len), jnp.int32)
    cost = jax.jit(forward).lower(state, ids, jnp.ones_like(ids)).compile().cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    return float(cost["flops"]) / ids.size


def pretraining(args, variant: Variant, data: Path, held_out: float, train):
    """The `minibert pretrain` config of one run of the variant: Flex at `--size`, its overrides and masking rate."""
    from minibert.training.pretrain import PretrainConfig

    return PretrainConfig(family="flex", size=args.size, objective="mlm", config_overrides=variant.overrides or None,
                          data=str(data), seq_len=args.seq_len, batch_size=args.batch_size, mask_rate=variant.mask_rate,
                          held_out_documents=held_out, dtype=args.dtype, train=train)


def train(args, name: str, variant: Variant, seed: int, steps: int, data: Path, held_out: float, budget: str) -> dict:
    """One pretraining run of the variant; its record (the line of runs.jsonl)."""
    import jax
    from flax import nnx

    from minibert.training.loop import TrainConfig
    from minibert.training.pretrain import pretrain

    every = max(1, steps // 5)
    out = Path(args.output) / "runs" / f"{name.replace('/', '-').replace(' ', '-')}-{budget}-seed{seed}"
    config = pretraining(args, variant, data, held_out, TrainConfig(
        steps=steps, learning_rate=args.lr, warmup_steps=steps // 10, log_every=every, eval_every=every,
        save_every=steps, seed=seed, output_dir=str(out)))
    shutil.rmtree(out, ignore_errors=True)     # a run killed before its line in runs.jsonl: begun again
    model, _, history = pretrain(config)
    scored = [r for r in history if "eval_loss" in r]
    return dict(variant=name, budget=budget, seed=seed, steps=steps,
                parameters=int(sum(p.size for p in jax.tree.leaves(nnx.state(model, nnx.Param)))),
                flops_per_token=forward_flops_per_token(model, args.batch_size, args.seq_len),
                eval_loss=scored[-1]["eval_loss"], eval_accuracy=scored[-1]["eval_accuracy"],
                curve=[(r["step"], r["eval_loss"]) for r in scored])


def step_time(args, name: str, data: Path, held_out: float) -> float:
    """Seconds per update of the variant: `--timing-steps` updates after the first interval (compilation), the median of
    the logged intervals (batch × seq / tokens_per_second, evaluations excluded), the variants timed one after the
    other so that each sees the same machine."""
    from minibert.training.loop import TrainConfig
    from minibert.training.pretrain import pretrain

    out = Path(args.output) / "timing" / name.replace("/", "-").replace(" ", "-")
    shutil.rmtree(out, ignore_errors=True)
    variant = VARIANTS[name]
    every = max(1, args.timing_steps // 6)
    config = pretraining(args, variant, data, held_out, TrainConfig(
        steps=args.timing_steps, learning_rate=args.lr, log_every=every, eval_every=args.timing_steps,
        save_every=args.timing_steps, output_dir=str(out)))
    _, _, history = pretrain(config)
    rates = [r["tokens_per_second"] for r in history][1:]           # the first interval holds the compilation
    return args.batch_size * args.seq_len / float(np.median(rates))


def summarise(runs: list[dict], names: list[str], step_times: dict[str, float]) -> list[dict]:
    """Per variant and budget: the means, stds and Δ loss against the baseline with its verdict."""
    rows = []
    for budget in ("tokens", "time"):
        base = [r["eval_loss"] for r in runs if r["variant"] == "baseline" and r["budget"] == "tokens"]
        for name in names:       # (the baseline's time budget is its token budget)
            kind = "tokens" if name == "baseline" else budget
            mine = [r for r in runs if r["variant"] == name and r["budget"] == kind]
            if not mine:
                continue
            loss = np.array([r["eval_loss"] for r in mine])
            noise = 2 * np.sqrt(loss.var(ddof=1) / len(loss) + np.var(base, ddof=1) / len(base)) \
                if len(loss) > 1 and len(base) > 1 else float("nan")
            delta = loss.mean() - np.mean(base)
            rows.append(dict(budget=budget, variant=name, parameters=mine[0]["parameters"],
                             flops_per_token=mine[0]["flops_per_token"], steps=mine[0]["steps"],
                             step_time=step_times[name], loss=loss.mean(),
                             loss_std=loss.std(ddof=1) if len(loss) > 1 else 0.0,
                             accuracy=np.mean([r["eval_accuracy"] for r in mine]),
                             accuracy_std=np.std([r["eval_accuracy"] for r in mine], ddof=1) if len(mine) > 1 else 0.0,
                             delta=delta, verdict="—" if name == "baseline" else
                             ("real" if abs(delta) > noise else "within noise") if noise == noise else "one seed"))
    return rows


def table(rows: list[dict]) -> str:
    lines = ["| budget | variant | parameters | MFLOPs/token | steps | step (ms) | held-out loss | held-out accuracy "
             "| Δ loss | verdict |", "|---|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        lines.append(f"| {r['budget']} | {r['variant']} | {r['parameters']:,} | {r['flops_per_token'] / 1e6:.1f} | "
                     f"{r['steps']} | {1e3 * r['step_time']:.0f} | {r['loss']:.3f} ± {r['loss_std']:.3f} | "
                     f"{r['accuracy']:.3f} ± {r['accuracy_std']:.3f} | {r['delta']:+.3f} | {r['verdict']} |")
    return "\n".join(lines)


def plot(runs: list[dict], step_times: dict[str, float], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(13, 4.5), sharey=True)
    colors = dict(zip(VARIANTS, plt.cm.tab10.colors + plt.cm.Set2.colors))
    for ax, budget in zip(axes, ("tokens", "time")):
        for r in runs:
            if r["budget"] == budget or (budget == "time" and r["variant"] == "baseline"):
                steps, loss = zip(*r["curve"])
                ax.plot(np.array(steps) * step_times[r["variant"]], loss, "-", color=colors[r["variant"]], alpha=0.7,
                        label=r["variant"] if r["seed"] == 0 else None)
        ax.set(xlabel="training time (s: step × step time)", title=f"equal {budget} budget")
    axes[0].set_ylabel("held-out MLM loss (WikiText-2 test)")
    axes[1].legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", default="tiny", help="the flex preset's size (tiny, mini, small, base)")
    p.add_argument("--steps", type=int, default=200, help="the token budget: updates of batch × seq tokens")
    p.add_argument("--seq-len", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--timing-steps", type=int, default=60, help="updates of each variant's timing run")
    p.add_argument("--variants", nargs="+", choices=list(VARIANTS), help="default: every one")
    p.add_argument("--data", default=str(_HERE.parent.parent / "shared" / "data" / "wikitext-2-raw"),
                   help="the folder of wiki.valid.raw and wiki.test.raw")
    p.add_argument("--smoke", action="store_true", help="BERT-tiny, baseline and pre-LN, one seed, 4 steps (CI)")
    p.add_argument("--output", required=True)
    args = p.parse_args(argv)
    if args.smoke:
        args.size, args.steps, args.seq_len, args.batch_size, args.seeds, args.timing_steps = "tiny", 4, 32, 8, 1, 6
        args.variants = list(SMOKE)
    names = ["baseline", *[n for n in (args.variants or VARIANTS) if n != "baseline"]]
    source = Path(args.data)
    if not (source / "wiki.valid.raw").is_file() or not (source / "wiki.test.raw").is_file():
        print(f"error: {source} holds no wiki.valid.raw and wiki.test.raw (WikiText-2 raw; --data)", file=sys.stderr)
        return 2
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    data, held_out = prepare_wikitext(source, out)
    log = out / "runs.jsonl"
    runs = [json.loads(line) for line in log.read_text().splitlines()] if log.is_file() else []

    def run(name, seed, steps, budget):
        for r in runs:
            if (r["variant"], r["seed"], r["budget"], r["steps"]) == (name, seed, budget, steps):
                return r
        record = train(args, name, VARIANTS[name], seed, steps, data, held_out, budget)
        runs.append(record)
        with log.open("a") as f:
            f.write(json.dumps(record) + "\n")
        print(f"{name:<14} {budget:<6} seed {seed}: {steps} steps, "
              f"held-out loss {record['eval_loss']:.3f}, accuracy {record['eval_accuracy']:.3f}", flush=True)
        return record

    for seed in range(args.seeds):                          # the token budget first
        for name in names:
            run(name, seed, args.steps, "tokens")
    timing = out / "step_times.json"                         # then the step times, which set the time budget
    step_times = json.loads(timing.read_text()) if timing.is_file() else {}
    for name in names:
        if name not in step_times:
            step_times[name] = step_time(args, name, data, held_out)
            timing.write_text(json.dumps(step_times, indent=1))
            print(f"{name:<14} {1e3 * step_times[name]:.0f} ms/step", flush=True)
    baseline_time = args.steps * step_times["baseline"]
    for seed in range(args.seeds):
        for name in names[1:]:
            steps = max(1, round(baseline_time / step_times[name]))
            if abs(steps - args.steps) > SAME_SPEED * args.steps:
                run(name, seed, steps, "time")
            else:                                            # as fast as the baseline: its token run is the same
                runs.append({**run(name, seed, args.steps, "tokens"), "budget": "time"})
    runs = [r for r in runs if r["variant"] in names]
    text = (f"{datetime.date.today()} · {platform.node()} ({os.cpu_count()} cores) · `python bench/ablations.py "
            f"{' '.join(argv if argv is not None else sys.argv[1:])}`\n\n"
            f"{table(summarise(runs, names, step_times))}\n\n"
            + "\n".join(f"- **{n}**: {v.claim}" for n, v in VARIANTS.items() if n in names)
            + "\n\nNot measured yet: " + "; ".join(f"{n} ({why})" for n, why in NOT_YET.items()) + ".\n")
    (out / "table.md").write_text(text)
    plot(runs, step_times, out / "ablations.png")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
