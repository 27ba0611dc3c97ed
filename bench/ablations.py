"""One idea at a time: what each idea of the BERT family buys a small encoder, on the same data and budget.

    python bench/ablations.py --output runs/ablations            # the table in bench/RESULTS.md (2 CPU cores)
    python bench/ablations.py --smoke --output /tmp/ablations    # CI: BERT-tiny, baseline and RTD, one seed, 4 steps
    python bench/ablations.py --size base --seq-len 128 --batch-size 256 --steps 20000 --dtype bfloat16 \
        --output runs/ablations-base                             # a researcher's GPU/TPU run (not yet measured)

Every variant is the composable encoder (`minibert/models/flex.py`, `--family flex`) with one field changed from
the baseline, or one choice of its pretraining (the masking rate; the objective, `Variant.objective`): BERT (Devlin
et al. 2019) — post-LN, learned absolute positions, GELU MLP, biases, token types, 15% masking — at `--size`
(default tiny: L=2, H=128, Turc et al. 2019; 200 updates of 32 × 64 tokens). BERT-mini (`--size mini`, L=4, H=256)
is the issue's baseline, but it does not fit the hour on 2 CPU cores: 0.95 s a step, so 120 updates a run and about
2.5 hours for the table (another job sharing the CPU), and at 120 updates it still answers "the" to every mask. The
data is WikiText-2 (Merity et al. 2016): its validation split to train on, its test split held out (both prepared
once into OUTPUT/data with one WordPiece vocabulary trained on the validation split; the held-out documents are
exactly the test split's, scored on at most 512 rows masked at 15% whatever the training rate,
`pretrain.EVAL_MASK_RATE`).

Each variant trains `--seeds` times (seed = initialisation, masking and data order) under two budgets:
- **tokens**: `--steps` updates of `--batch-size` × `--seq-len` tokens, as the baseline;
- **time**: the baseline's training time (its steps × its step time), spent at the variant's own
  step time: steps = baseline time / variant step time (a variant within 10% of the baseline's step time, the
  timing noise of a shared CPU, reuses its token run).
Each run, once trained (a time run that reuses its token run reuses its score too), is fine-tuned on SST-2 (Socher
et al. 2013; GLUE, `--sst2`) by the project's `finetune` (`minibert finetune --task glue`), the downstream arm: a
fresh [CLS] pooler and classifier on the saved encoder, `FINETUNE_EXAMPLES` = 8,000 sentences of train_full.tsv
drawn with the run's seed, one epoch of 250 updates of 32 × 64 tokens at peak learning rate `FINETUNE_LR` = 5e-4
(10% warmup, linear decay), then the 872 dev sentences scored once: 25–30 s a fine-tune of Flex-tiny on 2 CPU cores
(45–53 s with another job on the CPU). The budget is the smallest tried that learned on every seed: 4,000 sentences
(at 3e-4 to 1e-3), or 8,000 at 1e-4 or 3e-4, left some seeds' classifiers at the majority class's accuracy (0.509),
the plateau of the prior; 8,000 at 5e-4 took the baseline's three seeds to 0.73–0.76.

The RTD objective (ELECTRA, Clark et al. 2020) trains the family's small generator (a quarter of the width, Flex's
`generator_fraction`) with the discriminator, both sharing the embeddings; the run keeps the discriminator
(FlexForReplacedTokenDetection; the generator in its generator/ folder), and that is what is counted and fine-tuned.
Its held-out numbers are the generator's MLM loss + λ·the RTD loss, no MLM loss of a comparable model, so its
held-out columns are "—" and SST-2 alone judges it.

Reported per variant and budget (`table.md`, stdout): parameters; forward FLOPs per token (XLA's count of the
compiled forward at (batch, seq) up to the logits: the MLM head over every position, the RTD discriminator's
per-token score); step time (a timing run of 60 updates per variant after the token runs, the variants one after
the other: the median of the logged intervals after the first, compilation and evaluation excluded, batch × seq /
tokens_per_second; an RTD update runs generator and discriminator); held-out MLM loss and accuracy, mean ± std over
seeds; SST-2 dev accuracy, mean ± std over seeds; and Δ loss and Δ SST-2 against the baseline, each with its verdict:
"real" when |Δ| > 2·√(s²_variant/n + s²_baseline/n) (two standard errors of the difference), else "within noise".
The plot (`ablations.png`) draws held-out loss against training time (step × step time) for every MLM run.

A run writes one line to `OUTPUT/runs.jsonl` when it ends, its fine-tune one line to `OUTPUT/downstream.jsonl`
(the fine-tuned classifier in OUTPUT/finetune/); run the same command again and it continues with the work not
there yet (finished work is never redone or lost; a line is keyed by variant, seed, budget and steps). The paper's
own claim sits beside each idea in `VARIANTS`; bench/RESULTS.md says where the small-scale result agrees.
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
    objective: str = "mlm"    # PretrainConfig.objective: "rtd" trains a generator and scores its discriminator


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
    "bottleneck + stacked FFNs": Variant("intra_bottleneck_size=32,num_feedforward_networks=4,intermediate_size=128",
                                         "MobileBERT (Sun et al. 2020) §3.1–3.2, Table 1/Table 4: bottlenecks with "
                                         "4 stacked FFNs keep BERT's quality at a quarter of the intra-block width"),
    "RTD objective": Variant("", "Clark et al. 2020 (ELECTRA) §3.2, Table 1–2: replaced-token detection beats MLM "
                                 "downstream at equal compute, because every token is trained", objective="rtd"),
}
SMOKE = ("baseline", "RTD objective")
SAME_SPEED = 0.10     # a step time within 10% of the baseline's (a CPU's timing noise): the token run serves both
FINETUNE_EXAMPLES = 8000   # SST-2 sentences of each run's fine-tune: 250 updates of 32, 25–30 s on 2 CPU cores
FINETUNE_LR = 5e-4


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
    """XLA's FLOP count of the compiled forward pass on a (batch, seq) batch without padding, per token, up to the
    model's `.logits`: (batch, seq, vocab) of a masked LM, (batch, seq) of an RTD discriminator."""
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
    """The `minibert pretrain` config of one run of the variant: Flex at `--size`, its overrides, masking rate and
    objective."""
    from minibert.training.pretrain import PretrainConfig

    return PretrainConfig(family="flex", size=args.size, objective=variant.objective,
                          config_overrides=variant.overrides or None,
                          data=str(data), seq_len=args.seq_len, batch_size=args.batch_size, mask_rate=variant.mask_rate,
                          held_out_documents=held_out, dtype=args.dtype, train=train)


def run_dir(args, name: str, budget: str, seed: int) -> Path:
    """The folder of one pretraining run: its saved model (the discriminator of an RTD run) and metrics.jsonl."""
    return Path(args.output) / "runs" / f"{name.replace('/', '-').replace(' ', '-')}-{budget}-seed{seed}"


def train(args, name: str, variant: Variant, seed: int, steps: int, data: Path, held_out: float, budget: str) -> dict:
    """One pretraining run of the variant; its record (the line of runs.jsonl). An RTD run's parameters and FLOPs
    are its discriminator's (the model it keeps), and its held-out loss, accuracy and curve are None and []: the
    held-out numbers of an RTD run are its generator's MLM loss plus λ·the RTD loss, no MLM loss to compare."""
    import jax
    from flax import nnx

    from minibert.checkpoints import hf
    from minibert.training.loop import TrainConfig
    from minibert.training.pretrain import pretrain

    every = max(1, steps // 5)                 # (an RTD run's held-out scores go unused: scored at its end only)
    out = run_dir(args, name, budget, seed)
    config = pretraining(args, variant, data, held_out, TrainConfig(
        steps=steps, learning_rate=args.lr, warmup_steps=steps // 10, log_every=every,
        eval_every=every if variant.objective == "mlm" else steps, save_every=steps, seed=seed, output_dir=str(out)))
    shutil.rmtree(out, ignore_errors=True)     # a run killed before its line in runs.jsonl: begun again
    model, _, history = pretrain(config)       # (an RTD run returns its generator; the discriminator is in `out`)
    scored = [r for r in history if "eval_loss" in r] if variant.objective == "mlm" else []
    if variant.objective == "rtd":
        model = hf.from_pretrained(out)
    return dict(variant=name, budget=budget, seed=seed, steps=steps,
                parameters=int(sum(p.size for p in jax.tree.leaves(nnx.state(model, nnx.Param)))),
                flops_per_token=forward_flops_per_token(model, args.batch_size, args.seq_len),
                eval_loss=scored[-1]["eval_loss"] if scored else None,
                eval_accuracy=scored[-1]["eval_accuracy"] if scored else None,
                curve=[(r["step"], r["eval_loss"]) for r in scored])


def downstream(args, name: str, budget: str, seed: int) -> float:
    """SST-2 dev accuracy (all 872 sentences) of the run's saved model after a short fine-tune with the project's
    `finetune` (`minibert finetune --task glue`): a new [CLS] pooler and classifier, `--finetune-examples` sentences
    of train_full.tsv drawn with the run's seed, one epoch of batches of 32 at seq 64, peak learning rate
    `FINETUNE_LR` (10% warmup, linear decay), the dev set scored once at the end."""
    from minibert.training.finetune import FinetuneConfig, finetune
    from minibert.training.loop import TrainConfig

    out = Path(args.output) / "finetune" / run_dir(args, name, budget, seed).name
    shutil.rmtree(out, ignore_errors=True)     # a fine-tune killed before its line in downstream.jsonl: begun again
    once = 10 ** 9                             # log, score and save at the last step only
    result = finetune(FinetuneConfig(
        task="glue", model=str(run_dir(args, name, budget, seed)), train_file=str(Path(args.sst2) / "train_full.tsv"),
        eval_file=str(Path(args.sst2) / "dev.tsv"), max_length=64, batch_size=32, epochs=1.0,
        train_limit=args.finetune_examples, train=TrainConfig(learning_rate=FINETUNE_LR, log_every=once,
                                                               eval_every=once, save_every=once, seed=seed,
                                                               output_dir=str(out))))
    return result.best["accuracy"]


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


def compared(values: list[float], base: list[float]) -> tuple[float, str]:
    """Δ = mean(values) − mean(base) and its verdict: "real" when |Δ| > 2·√(s²/n + s²_base/n_base), "within
    noise" otherwise, "one seed" when either side has fewer than two values to estimate s from."""
    delta = float(np.mean(values) - np.mean(base))
    if len(values) < 2 or len(base) < 2:
        return delta, "one seed"
    noise = 2 * np.sqrt(np.var(values, ddof=1) / len(values) + np.var(base, ddof=1) / len(base))
    return delta, "real" if abs(delta) > noise else "within noise"


def spread(values: list[float]) -> tuple[float, float]:
    """Mean and standard deviation (ddof 1; 0 for one value)."""
    return float(np.mean(values)), float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def summarise(runs: list[dict], names: list[str], step_times: dict[str, float]) -> list[dict]:
    """Per variant and budget: the means, stds and Δ loss and Δ SST-2 against the baseline with their verdicts (None
    where a run has no held-out MLM loss, the RTD runs)."""
    rows = []
    for budget in ("tokens", "time"):
        base = [r for r in runs if r["variant"] == "baseline" and r["budget"] == "tokens"]
        for name in names:       # (the baseline's time budget is its token budget)
            kind = "tokens" if name == "baseline" else budget
            mine = [r for r in runs if r["variant"] == name and r["budget"] == kind]
            if not mine:
                continue
            loss = [r["eval_loss"] for r in mine if r["eval_loss"] is not None]
            sst2 = [r["sst2_accuracy"] for r in mine]
            row = dict(budget=budget, variant=name, parameters=mine[0]["parameters"],
                       flops_per_token=mine[0]["flops_per_token"], steps=mine[0]["steps"], step_time=step_times[name],
                       loss=None, loss_std=None, accuracy=None, accuracy_std=None, delta=None, verdict=None)
            if loss:
                row["loss"], row["loss_std"] = spread(loss)
                row["accuracy"], row["accuracy_std"] = spread([r["eval_accuracy"] for r in mine])
                row["delta"], row["verdict"] = compared(loss, [r["eval_loss"] for r in base])
            row["sst2"], row["sst2_std"] = spread(sst2)
            row["sst2_delta"], row["sst2_verdict"] = compared(sst2, [r["sst2_accuracy"] for r in base])
            if name == "baseline":
                row["verdict"] = row["sst2_verdict"] = "—"
            rows.append(row)
    return rows


def table(rows: list[dict]) -> str:
    lines = ["| budget | variant | parameters | MFLOPs/token | steps | step (ms) | held-out loss | held-out accuracy "
             "| Δ loss | verdict | SST-2 dev accuracy | Δ SST-2 | verdict |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---|"]
    for r in rows:
        held_out = (f"{r['loss']:.3f} ± {r['loss_std']:.3f} | {r['accuracy']:.3f} ± {r['accuracy_std']:.3f} | "
                    f"{r['delta']:+.3f} | {r['verdict']}") if r["loss"] is not None else "— | — | — | —"
        lines.append(f"| {r['budget']} | {r['variant']} | {r['parameters']:,} | {r['flops_per_token'] / 1e6:.1f} | "
                     f"{r['steps']} | {1e3 * r['step_time']:.0f} | {held_out} | {r['sst2']:.3f} ± {r['sst2_std']:.3f} "
                     f"| {r['sst2_delta']:+.3f} | {r['sst2_verdict']} |")
    return "\n".join(lines)


def plot(runs: list[dict], step_times: dict[str, float], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(13, 4.5), sharey=True)
    colors = dict(zip(VARIANTS, plt.cm.tab10.colors + plt.cm.Set2.colors))
    for ax, budget in zip(axes, ("tokens", "time")):
        for r in runs:            # (an RTD run has no held-out MLM curve)
            if r["curve"] and (r["budget"] == budget or (budget == "time" and r["variant"] == "baseline")):
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
    p.add_argument("--sst2", default=str(_HERE.parent.parent / "shared" / "data" / "SST-2"),
                   help="the folder of SST-2's train_full.tsv and dev.tsv")
    p.add_argument("--finetune-examples", type=int, default=FINETUNE_EXAMPLES,
                   help="SST-2 training sentences of each fine-tune (one epoch)")
    p.add_argument("--smoke", action="store_true", help="BERT-tiny, baseline and RTD objective, one seed, 4 steps, "
                                                        "fine-tuned on 32 sentences (CI)")
    p.add_argument("--output", required=True)
    args = p.parse_args(argv)
    if args.smoke:
        args.size, args.steps, args.seq_len, args.batch_size, args.seeds, args.timing_steps = "tiny", 4, 32, 8, 1, 6
        args.variants, args.finetune_examples = list(SMOKE), 32
    names = ["baseline", *[n for n in (args.variants or VARIANTS) if n != "baseline"]]
    source, sst2 = Path(args.data), Path(args.sst2)
    if not (source / "wiki.valid.raw").is_file() or not (source / "wiki.test.raw").is_file():
        print(f"error: {source} holds no wiki.valid.raw and wiki.test.raw (WikiText-2 raw; --data)", file=sys.stderr)
        return 2
    if not (sst2 / "train_full.tsv").is_file() or not (sst2 / "dev.tsv").is_file():
        print(f"error: {sst2} holds no train_full.tsv and dev.tsv (GLUE's SST-2; --sst2)", file=sys.stderr)
        return 2
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    data, held_out = prepare_wikitext(source, out)
    log, scores_log = out / "runs.jsonl", out / "downstream.jsonl"
    runs, scores = ([json.loads(line) for line in f.read_text().splitlines()] if f.is_file() else []
                    for f in (log, scores_log))
    key = lambda r: (r["variant"], r["seed"], r["budget"], r["steps"])

    def run(name, seed, steps, budget):
        """The run's record with its `sst2_accuracy`: each read from its log, or trained / fine-tuned and logged."""
        record = next((r for r in runs if key(r) == (name, seed, budget, steps)), None)
        if record is None:
            record = train(args, name, VARIANTS[name], seed, steps, data, held_out, budget)
            runs.append(record)
            with log.open("a") as f:
                f.write(json.dumps(record) + "\n")
            scored = "" if record["eval_loss"] is None else \
                f", held-out loss {record['eval_loss']:.3f}, accuracy {record['eval_accuracy']:.3f}"
            print(f"{name:<14} {budget:<6} seed {seed}: {steps} steps{scored}", flush=True)
        score = next((r for r in scores if key(r) == key(record)), None)
        if score is None:
            score = dict(variant=name, seed=seed, budget=budget, steps=steps,
                         sst2_accuracy=downstream(args, name, budget, seed))
            scores.append(score)
            with scores_log.open("a") as f:
                f.write(json.dumps(score) + "\n")
            print(f"{name:<14} {budget:<6} seed {seed}: SST-2 dev accuracy {score['sst2_accuracy']:.3f}", flush=True)
        return {**record, "sst2_accuracy": score["sst2_accuracy"]}

    measured = []                                            # the records of the table, the time arm's included
    for seed in range(args.seeds):                          # the token budget first
        for name in names:
            measured.append(run(name, seed, args.steps, "tokens"))
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
                measured.append(run(name, seed, steps, "time"))
            else:                                            # as fast as the baseline: its token run is the same
                measured.append({**run(name, seed, args.steps, "tokens"), "budget": "time"})
    text = (f"{datetime.date.today()} · {platform.node()} ({os.cpu_count()} cores) · `python bench/ablations.py "
            f"{' '.join(argv if argv is not None else sys.argv[1:])}`\n\n"
            f"{table(summarise(measured, names, step_times))}\n\n"
            + "\n".join(f"- **{n}**: {v.claim}" for n, v in VARIANTS.items() if n in names) + "\n")
    (out / "table.md").write_text(text)
    plot(measured, step_times, out / "ablations.png")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
