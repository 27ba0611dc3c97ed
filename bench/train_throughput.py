"""Training throughput: the minibert training step vs the `transformers` PyTorch reference, in one run.

    python bench/train_throughput.py --peak-tflops 989 [--configs NAME ...] [--impls IMPL ...] [--json rows.json]
    python bench/train_throughput.py --smoke          # tiny configs on the CPU: the CI smoke test, no timing judged

Every row is one training step, timed on the same config, batch, sequence length and data:
- `minibert`: the library's own step (`training.loop.Trainer`, jit, donated buffers), bf16 compute with float32
  master weights, and what `minibert pretrain` turns on: the sparse MLM head (`Batches(max_predictions=...)`) and
  fused attention on a GPU/TPU; ModernBERT unpads (`unpad`, a static token capacity);
- `minibert-dense`: the same with a dense MLM head (the ablation of the sparse head);
- `torch-eager` / `torch-compile`: `transformers` with SDPA attention, eager or under `torch.compile`, bf16
  autocast, fused AdamW, gradient clipping as minibert's step.
Both frameworks run with attention dropout 0 (`jax.nn.dot_product_attention` has none; hidden dropout stays).
Warm-up steps (compilation included) are excluded; the timer brackets `steps` steps between two device
synchronisations, each step on a batch already on the device (the input pipeline is not timed).

Columns: real (non-padding) tokens/s; the ratio to the reference rows of the same config (MosaicBERT has no
`transformers` model: BERT-base's at its batch and length); model FLOPs utilisation, FLOPs per step =
6·N_matmul·T_real + 12·L·d·Σ(attended pairs) + 6·N_head·predictions, where predictions are the masked tokens for
the sparse head and every real token for a dense one (`--peak-tflops`: the chip's dense bf16 peak, 989 for an
H100 SXM); the peak device memory of the row's process. Each config runs in two fresh processes (one per
framework), so that peak memory is the row's own and neither framework's allocator starves the other.
ModernBERT's rows are WikiText-2 sections (text between headings of wiki.test.raw) as documents, one per row, with
their lengths in tokens of a byte-level BPE trained on wiki.valid.raw: most are shorter than 1024, so padding
matters.
"""

from __future__ import annotations

import sys
from pathlib import Path

# `bench/` holds a `tokenize.py` that shadows the standard library's (which jax and torch import): keep this
# folder off the import path, and put the repository on it instead.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE] + [str(_HERE.parent)]

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import datetime  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

ROOT = _HERE.parent
IMPLS = ("minibert", "minibert-dense", "torch-eager", "torch-compile")
PAD, CLS, SEP, MASK, FIRST_WORD = 0, 1, 2, 3, 4         # token ids of the synthetic batches
TOKENIZER_SIZE = 30000                                 # ids drawn below this; the rest of the vocabulary unused
STAGED_BATCHES = 4                                     # distinct batches on the device, used in turn


@dataclasses.dataclass(frozen=True)
class Bench:
    """One benchmark configuration: a family's model (Hugging Face config names), objective, shape and data."""

    family: str                        # bert, mosaicbert, modernbert
    model: dict                        # config values, the same for minibert and transformers
    objective: str                     # "mlm" or "mlm+nsp"
    seq: int
    batch: int
    mask_rate: float
    corpus_lengths: bool = False       # rows as long as WikiText-2 sections (else every row full)
    reference: str | None = None       # the config whose torch rows are this one's reference (default: its own)

    @property
    def minibert_class(self) -> str:
        return {"bert": "BertForPreTraining" if self.objective == "mlm+nsp" else "BertForMaskedLM",
                "mosaicbert": "MosaicBertForMaskedLM", "modernbert": "ModernBertForMaskedLM"}[self.family]

    @property
    def torch_class(self) -> str | None:
        return {"bert": self.minibert_class, "modernbert": "ModernBertForMaskedLM"}.get(self.family)


# BERT-base (Devlin et al. 2019) with its vocabulary rounded up to a multiple of 64 (30522 → 30528, as MosaicBERT).
BERT_BASE = dict(vocab_size=30528, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                 intermediate_size=3072, attention_probs_dropout_prob=0.0, pad_token_id=PAD)
BERT_TINY = dict(vocab_size=1024, hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=256,
                 max_position_embeddings=64, attention_probs_dropout_prob=0.0, pad_token_id=PAD)
MODERNBERT_BASE = dict(pad_token_id=PAD)                # the paper's base: the config class's defaults
MODERNBERT_TINY = dict(vocab_size=1024, hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                       intermediate_size=96, local_attention=16, max_position_embeddings=128, pad_token_id=PAD)
MOSAICBERT_BASE = dict(pad_token_id=PAD)                # MosaicBERT-base: the config class's defaults
MOSAICBERT_TINY = dict(vocab_size=1024, hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                       intermediate_size=128, pad_token_id=PAD)

CONFIGS = {
    **{f"bert-base-128-b{b}-{objective}": Bench("bert", BERT_BASE, objective, 128, b, 0.15)
       for b in (128, 256) for objective in ("mlm+nsp", "mlm")},
    "modernbert-base-1024-wiki": Bench("modernbert", MODERNBERT_BASE, "mlm", 1024, 32, 0.3, corpus_lengths=True),
    "mosaicbert-base-128-b128": Bench("mosaicbert", MOSAICBERT_BASE, "mlm", 128, 128, 0.3,
                                      reference="bert-base-128-b128-mlm"),
}
SMOKE_CONFIGS = {
    "bert-tiny-32-b8-mlm+nsp": Bench("bert", BERT_TINY, "mlm+nsp", 32, 8, 0.15),
    "bert-tiny-32-b8-mlm": Bench("bert", BERT_TINY, "mlm", 32, 8, 0.15),
    "modernbert-tiny-64-wiki": Bench("modernbert", MODERNBERT_TINY, "mlm", 64, 8, 0.3, corpus_lengths=True),
    "mosaicbert-tiny-32-b8": Bench("mosaicbert", MOSAICBERT_TINY, "mlm", 32, 8, 0.3, reference="bert-tiny-32-b8-mlm"),
}
# by name only: a CPU-sized BERT (Turc et al. 2019's mini, L=4, H=256) with BERT's real vocabulary, where the
# MLM head's share of the work is BERT-base's order (the sparse-head ablation on a CPU)
EXTRA_CONFIGS = {
    "bert-mini-128-b32-mlm": Bench("bert", dict(BERT_BASE, hidden_size=256, num_hidden_layers=4, num_attention_heads=4,
                                                intermediate_size=1024), "mlm", 128, 32, 0.15),
}
ALL_CONFIGS = {**CONFIGS, **SMOKE_CONFIGS, **EXTRA_CONFIGS}


# ---------------------------------------------------------------- model FLOPs

def full_config(bench: Bench) -> dict:
    """The config values with the family's defaults filled in (pure Python: the orchestrator imports no framework)."""
    defaults = {"bert": dict(max_position_embeddings=512),
                "mosaicbert": dict(vocab_size=30528, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                                   intermediate_size=3072),
                "modernbert": dict(vocab_size=50368, hidden_size=768, num_hidden_layers=22, num_attention_heads=12,
                                   intermediate_size=1152, local_attention=128, global_attn_every_n_layers=3)}
    return {**defaults[bench.family], **bench.model}


def matmul_parameters(bench: Bench) -> dict[str, int]:
    """Weights used in matmuls, by how often they are used: per real token (the encoder layers), per prediction
    (the MLM head's transform and the vocabulary projection, tied to the embeddings), per sequence (pooler, NSP).
    BERT's FFN is d→i→d; MosaicBERT's and ModernBERT's are gated (d→2i, i→d); all have 4·d² of attention."""
    c = full_config(bench)
    d, i, layers, vocab = c["hidden_size"], c["intermediate_size"], c["num_hidden_layers"], c["vocab_size"]
    ffn = 2 * d * i if bench.family == "bert" else 3 * d * i
    return {"token": layers * (4 * d * d + ffn), "prediction": d * d + d * vocab,
            "sequence": d * d + 2 * d if bench.objective == "mlm+nsp" else 0}


def attended_pairs(bench: Bench, lengths: np.ndarray) -> int:
    """Σ over layers and rows of (real tokens × keys each one attends to): a row of n tokens attends n² pairs in a
    global layer, n·min(n, window) in a ModernBERT local one (every third layer, from the first, is global)."""
    c = full_config(bench)
    lengths = lengths.astype(np.int64)
    if bench.family != "modernbert":
        return int(c["num_hidden_layers"] * np.sum(lengths * lengths))
    every, window = c["global_attn_every_n_layers"], c["local_attention"]
    global_layers = len(range(0, c["num_hidden_layers"], every))
    local_layers = c["num_hidden_layers"] - global_layers
    return int(global_layers * np.sum(lengths * lengths) + local_layers * np.sum(lengths * np.minimum(lengths, window)))


def step_flops(bench: Bench, lengths: np.ndarray, predictions: int) -> float:
    """Model FLOPs of one training step (forward + backward = 3 × forward, 2 FLOPs per multiply-add):
    6·N_token·T + 12·d·pairs + 6·N_prediction·predictions + 6·N_sequence·batch."""
    n = matmul_parameters(bench)
    d = full_config(bench)["hidden_size"]
    return float(6 * n["token"] * lengths.sum() + 12 * d * attended_pairs(bench, lengths)
                 + 6 * n["prediction"] * predictions + 6 * n["sequence"] * len(lengths))


# ---------------------------------------------------------------- data (the same in both frameworks)

def corpus_lengths(data: Path) -> np.ndarray:
    """Token counts of the sections of WikiText-2's test split (documents = text between headings), under a
    byte-level BPE of ModernBERT's vocabulary size trained on the valid split (held-out text: realistic lengths)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    read = lambda split: (data / "wikitext-2-raw" / f"wiki.{split}.raw").read_text(encoding="utf-8").replace("\r", "")
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.train_from_iterator([read("valid")], trainers.BpeTrainer(
        vocab_size=50368, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False))
    sections = [s.strip() for s in re.split(r"^ (?:= )+[^=\n]+(?: =)+ $", read("test"), flags=re.M) if s.strip()]
    return np.array([len(e.ids) for e in tokenizer.encode_batch(sections)], np.int64)


def examples(bench: Bench, lengths_pool: np.ndarray | None, seed: int = 0) -> dict[str, np.ndarray]:
    """STAGED_BATCHES batches of rows `[CLS] words [SEP]` (+ `B [SEP]` with NSP) and padding. With corpus lengths,
    each row is one document's length (documents longer than seq are cut; for seq < 1024, lengths are scaled by
    seq/1024, so a tiny config keeps the distribution's shape)."""
    rng = np.random.default_rng(seed)
    n, seq = STAGED_BATCHES * bench.batch, bench.seq
    if bench.corpus_lengths:
        drawn = rng.choice(lengths_pool, n) * min(1.0, seq / 1024)
        lengths = np.clip(np.round(drawn).astype(np.int64), 8, seq)
    else:
        lengths = np.full(n, seq)
    words = min(TOKENIZER_SIZE, full_config(bench)["vocab_size"])
    ids = rng.integers(FIRST_WORD, words, (n, seq)).astype(np.int32)
    real = np.arange(seq)[None] < lengths[:, None]
    ids[:, 0] = CLS
    ids[np.arange(n), lengths - 1] = SEP
    ids[~real] = PAD
    out = {"input_ids": ids, "attention_mask": real.astype(np.int32), "token_type_ids": np.zeros_like(ids)}
    if bench.objective == "mlm+nsp":             # `[CLS] A [SEP] B [SEP]`, B at a random split
        split = rng.integers(2, lengths - 2)
        ids[np.arange(n), split] = SEP
        out["token_type_ids"] = ((np.arange(seq)[None] > split[:, None]) & real).astype(np.int32)
        out["next_sentence_label"] = rng.integers(0, 2, n).astype(np.int32)
    return out


class _Specials:
    """What `Batches` reads of a tokenizer."""

    mask_token_id, all_special_ids = MASK, (PAD, CLS, SEP, MASK)

    def __init__(self, size: int):
        self.size = size

    def __len__(self):
        return self.size


def staged_batches(bench: Bench, lengths_pool) -> list[dict[str, np.ndarray]]:
    """The masked batches, sparse layout (`masked_positions` + their labels), as `minibert pretrain` makes them."""
    from minibert.training.data import Batches, FixedRows, default_max_predictions

    rows = examples(bench, lengths_pool)
    words = min(TOKENIZER_SIZE, full_config(bench)["vocab_size"])
    batches = Batches(FixedRows(rows), bench.batch, _Specials(words), seed=0, mask_rate=bench.mask_rate,
                      max_predictions=default_max_predictions(bench.seq, bench.mask_rate))
    return [batches(step) for step in range(STAGED_BATCHES)]   # one epoch: every row once


def dense(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The same batch with (batch, seq) labels, -100 where nothing is predicted: for a dense MLM head."""
    labels = np.full(batch["input_ids"].shape, -100, batch["labels"].dtype)
    filled = batch["labels"] != -100
    rows = np.nonzero(filled)[0]
    labels[rows, batch["masked_positions"][filled]] = batch["labels"][filled]
    return {**{k: v for k, v in batch.items() if k != "masked_positions"}, "labels": labels}


def batch_counts(bench: Bench, batch: dict[str, np.ndarray], sparse: bool) -> tuple[int, float]:
    """(real tokens, model FLOPs) of one step on `batch`."""
    lengths = batch["attention_mask"].sum(1)
    predictions = int((batch["labels"] != -100).sum()) if sparse else int(lengths.sum())
    return int(lengths.sum()), step_flops(bench, lengths, predictions)


# ---------------------------------------------------------------- the workers (one process per framework)

def run_minibert(bench: Bench, batches, impls, warmup: int, steps: int) -> list[dict]:
    import gc

    import jax
    import jax.numpy as jnp
    from flax import nnx

    from minibert.models import auto
    from minibert.nn.attention import set_attention_implementation
    from minibert.nn.packing import set_token_capacity
    from minibert.training.loop import TrainConfig, Trainer
    from minibert.training.pretrain import attention_implementation

    device = jax.devices()[0]
    rows = []
    for impl in [i for i in IMPLS if i in impls and i.startswith("minibert")]:
        sparse = impl == "minibert"
        data = batches if sparse else [dense(b) for b in batches]
        model_class = auto.model_class_by_name(bench.minibert_class)
        model = model_class(model_class.config_class(**bench.model), dtype=jnp.bfloat16, rngs=nnx.Rngs(0))
        check_matmul_parameters(bench, model)
        set_attention_implementation(model, attention_implementation("auto"))
        if bench.family == "modernbert":        # unpadding: per-token layers on a static budget of real tokens
            model.model.unpad = True
            most = max(int(b["attention_mask"].sum()) for b in data)
            set_token_capacity(model, min(bench.batch * bench.seq, 128 * math.ceil(most / 128)))
        with tempfile.TemporaryDirectory() as tmp:
            trainer = Trainer(model, TrainConfig(steps=warmup + steps, learning_rate=1e-4, warmup_steps=warmup,
                                                 output_dir=tmp), _Sized(bench.batch))
            on_device = [trainer._put(b) for b in data]
            metrics = {}

            def step(i):                         # the compiled step of `Trainer.run`, buffers donated
                trainer.state, metrics["last"] = trainer._train_step(trainer.state, trainer.rng_state,
                                                                     on_device[i % STAGED_BATCHES], i)

            warm, elapsed = timed(step, lambda: jax.block_until_ready((trainer.state, metrics["last"])), warmup,
                                  steps)
            peak = (device.memory_stats() or {}).get("peak_bytes_in_use")
            rows.append(row(bench, impl, data, warmup, steps, warm, elapsed, float(metrics["last"]["loss"]), peak,
                            f"{device.platform}: {device.device_kind}", sparse))
            del trainer, on_device, model, metrics
            gc.collect()
    return rows


def timed(step, synchronize, warmup: int, steps: int) -> tuple[float, float]:
    """Seconds taken by the warm-up steps step(0) … step(warmup − 1) (compilation included), and by the timed
    steps step(warmup) … step(warmup + steps − 1), each between two device synchronisations."""
    start = time.perf_counter()
    for i in range(warmup):
        step(i)
    synchronize()
    warm = time.perf_counter()
    for i in range(warmup, warmup + steps):
        step(i)
    synchronize()
    return warm - start, time.perf_counter() - warm


class _Sized:
    """What `Trainer` reads of its batches here: the batch size (the steps are fed by hand)."""

    def __init__(self, batch_size: int):
        self.batch_size = batch_size


def check_matmul_parameters(bench: Bench, model) -> None:
    """The FLOP formula's parameter counts must be the model's: count its Linear weights (+ the tied decoder)."""
    from flax import nnx

    from minibert.nn.linear import Linear

    counted = {"token": 0, "prediction": 0, "sequence": 0}
    for path, module in nnx.iter_modules(model):
        if isinstance(module, Linear):
            name = ".".join(map(str, path))
            kind = ("sequence" if re.search(r"pooler|seq_relationship", name) else
                    "prediction" if re.search(r"^(cls|head)\.", name) else "token")
            counted[kind] += module.weight.size
    config = full_config(bench)
    counted["prediction"] += config["vocab_size"] * config["hidden_size"]
    if counted != matmul_parameters(bench):
        raise AssertionError(f"{bench.family}: FLOP formula {matmul_parameters(bench)} ≠ model {counted}")


def run_torch(bench: Bench, batches, impls, warmup: int, steps: int) -> list[dict]:
    import torch
    import transformers

    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    torch.set_float32_matmul_precision("high")
    model_class = getattr(transformers, bench.torch_class)
    data = [{k: torch.from_numpy(v.astype(np.int64)).to(device) for k, v in dense(b).items()
             if not (bench.family == "modernbert" and k == "token_type_ids")} for b in batches]
    rows = []
    for impl in [i for i in IMPLS if i in impls and i.startswith("torch")]:
        torch.manual_seed(0)
        model = model_class(model_class.config_class(**bench.model, attn_implementation="sdpa"))
        model = model.to(device).train()
        decay = [p for p in model.parameters() if p.ndim >= 2]
        no_decay = [p for p in model.parameters() if p.ndim < 2]
        groups = [{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}]
        optimizer = torch.optim.AdamW(groups, lr=1e-4, eps=1e-6, fused=True)
        forward = torch.compile(model) if impl == "torch-compile" else model

        losses = []

        def step(i):
            with torch.autocast(device.type, dtype=torch.bfloat16):
                loss = forward(**data[i % STAGED_BATCHES]).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            losses[:] = [loss]

        if cuda:
            torch.cuda.reset_peak_memory_stats()
        warm, elapsed = timed(step, sync, warmup, steps)
        name = torch.cuda.get_device_name() if cuda else "cpu"
        rows.append(row(bench, impl, [dense(b) for b in batches], warmup, steps, warm, elapsed, float(losses[0]),
                        torch.cuda.max_memory_allocated() if cuda else None, f"{device.type}: {name}", False))
        del model, optimizer, forward, losses
        if cuda:
            torch.cuda.empty_cache()
    return rows


def row(bench: Bench, impl: str, data, warmup: int, steps: int, warm: float, elapsed: float, loss: float,
        peak_bytes, device: str, sparse: bool) -> dict:
    """The measurements of one row: real tokens and model FLOPs summed over the timed steps; the seconds of the
    warm-up steps (compilation)."""
    counts = [batch_counts(bench, data[i % STAGED_BATCHES], sparse) for i in range(warmup, warmup + steps)]
    return {"impl": impl, "steps": steps, "warmup_seconds": warm, "seconds": elapsed,
            "tokens": sum(c[0] for c in counts), "flops": sum(c[1] for c in counts), "loss": loss,
            "peak_bytes": peak_bytes, "device": device}


def worker(args) -> None:
    """One framework's rows of the given configs, printed as JSON lines for the orchestrator."""
    lengths = np.load(args.lengths) if args.lengths else None
    run = run_minibert if args.worker == "minibert" else run_torch
    for name in args.config:
        bench = ALL_CONFIGS[name]
        if args.worker == "torch" and bench.torch_class is None:
            continue
        for result in run(bench, staged_batches(bench, lengths), args.impls, args.warmup, args.steps):
            print("ROW " + json.dumps({"config": name, **result}), flush=True)


# ---------------------------------------------------------------- the orchestrator

def measure(names: list[str], configs: dict[str, Bench], args, lengths_file: str | None) -> list[dict]:
    """Run the configs' workers (minibert, then torch) in a fresh process each; rows that did not come back carry
    the error's last line."""
    rows = []
    for framework in ("minibert", "torch"):
        impls = [i for i in args.impls if i.startswith(framework)]
        expected = [(n, i) for n in names for i in impls if framework == "minibert" or configs[n].torch_class]
        if not expected:
            continue
        command = [sys.executable, __file__, "--worker", framework, "--config", *names, "--impls", *impls,
                   "--warmup", str(args.warmup), "--steps", str(args.steps)]
        if lengths_file:
            command += ["--lengths", lengths_file]
        done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
        found = [json.loads(line[4:]) for line in done.stdout.splitlines() if line.startswith("ROW ")]
        rows += found
        if done.returncode:
            error = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
            print(f"{', '.join(names)} / {framework} failed: {error}", file=sys.stderr)
            got = {(r["config"], r["impl"]) for r in found}
            rows += [{"config": n, "impl": i, "error": error[:200]} for n, i in expected if (n, i) not in got]
    return rows


def table(rows: list[dict], configs: dict[str, Bench], peak_tflops: float | None) -> str:
    """A Markdown table: one line per row, ratios to the reference config's torch rows of the same run."""
    by_key = {(r["config"], r["impl"]): r for r in rows if "error" not in r}
    rate = lambda r: r["tokens"] / r["seconds"]
    lines = ["| config | impl | real tokens/s | × torch eager | × torch.compile | MFU | peak memory | step | loss "
             "| warm-up (compile) |", "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['config']} | {r['impl']} | failed: {r['error']} | | | | | | | |")
            continue
        reference = configs[r["config"]].reference or r["config"]
        ratios = []
        for impl in ("torch-eager", "torch-compile"):
            other = by_key.get((reference, impl))
            ratios.append(f"{rate(r) / rate(other):.2f}" if other else "–")
        mfu = f"{100 * r['flops'] / r['seconds'] / (peak_tflops * 1e12):.1f}%" if peak_tflops else "–"
        memory = f"{r['peak_bytes'] / 2**30:.1f} GiB" if r.get("peak_bytes") else "–"
        lines.append(f"| {r['config']} | {r['impl']} | {rate(r):,.0f} | {ratios[0]} | {ratios[1]} | {mfu} | {memory} "
                     f"| {1000 * r['seconds'] / r['steps']:.1f} ms | {r['loss']:.2f} | {r['warmup_seconds']:.0f} s |")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny configs on the CPU (CI): checks the script runs")
    parser.add_argument("--configs", nargs="+", help="config names (default: every config of the mode); "
                        f"full: {', '.join(CONFIGS)}; smoke: {', '.join(SMOKE_CONFIGS)}; "
                        f"by name only: {', '.join(EXTRA_CONFIGS)}")
    parser.add_argument("--impls", nargs="+", choices=IMPLS,
                        help="rows per config (default: minibert torch-eager torch-compile; with --smoke "
                             "minibert torch-eager, as torch.compile takes minutes on a CPU)")
    parser.add_argument("--steps", type=int, help="timed steps per row (default 30; 3 with --smoke)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first, compilation included")
    parser.add_argument("--peak-tflops", type=float, help="the chip's dense bf16 peak for MFU (H100 SXM: 989)")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data",
                        help="folder holding wikitext-2-raw/ (for ModernBERT's lengths)")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    parser.add_argument("--worker", choices=["minibert", "torch"], help=argparse.SUPPRESS)
    parser.add_argument("--config", nargs="+", help=argparse.SUPPRESS)
    parser.add_argument("--lengths", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.steps = args.steps or (3 if args.smoke else 30)
    args.impls = args.impls or (["minibert", "torch-eager"] if args.smoke
                                else ["minibert", "torch-eager", "torch-compile"])
    if args.worker:
        return worker(args)

    names = args.configs or list(SMOKE_CONFIGS if args.smoke else CONFIGS)
    unknown = [n for n in names if n not in ALL_CONFIGS]
    if unknown:
        parser.error(f"unknown config(s) {', '.join(unknown)}; choose from {', '.join(ALL_CONFIGS)}")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        lengths_file = None
        if any(ALL_CONFIGS[n].corpus_lengths for n in names):
            lengths_file = str(Path(tmp) / "lengths.npy")
            np.save(lengths_file, corpus_lengths(args.data))
        # one process per config and framework, so that peak memory is the row's own; a smoke run (no device
        # memory to keep apart) runs every config in one process per framework
        groups = [names] if args.smoke else [[name] for name in names]
        rows = [r for group in groups for r in measure(group, ALL_CONFIGS, args, lengths_file)]
        order = {(n, i): k for k, (n, i) in enumerate((n, i) for n in names for i in IMPLS)}
        rows.sort(key=lambda r: order[r["config"], r["impl"]])
    devices = sorted({r["device"] for r in rows if "device" in r})
    print(f"{datetime.date.today()} · {'; '.join(devices)} · python {' '.join(sys.argv)}")
    print(f"{args.steps} timed steps per row after {args.warmup} warm-up steps; bf16; "
          f"{time.perf_counter() - started:.0f} s in all\n")
    print(table(rows, ALL_CONFIGS, args.peak_tflops))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    if any("error" in r for r in rows):
        sys.exit(1)


if __name__ == "__main__":
    main()
