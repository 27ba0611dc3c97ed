"""cuDNN attention on a GPU: bf16 parity against a float32 reference, and padding as lengths against a dense mask.

    python bench/attention_check.py [--json out.json]   # on a GPU: minibert's fused path in bf16 is cuDNN
    python bench/attention_check.py --smoke             # on a CPU: the same script on tiny shapes (XLA kernel; CI)

1. Parity. Inputs of four kinds, (batch, seq, heads, head_dim) = (4, 512, 12, 64): right padding with all-real
   rows, left padding, packed documents (segment ids), ALiBi bias with right padding. The library's fused path
   (`minibert.nn.attention.dot_product_attention(implementation="fused")`, bf16 inputs: cuDNN on a GPU) and
   `jax.nn.dot_product_attention(implementation="xla")` on the same bf16 inputs are each compared with the
   float32 reference (the einsum path on the inputs cast to float32, matmuls at full precision): max abs error of
   the output on real query rows and of dq, dk, dv for the loss Σ out·g (g a fixed random cotangent on real
   rows). XLA's bf16 error is the fair bound for a bf16 kernel. `kernel` says whether cuDNN ran (a
   `__cudnn$fmha` custom call in the compiled program).
2. Padding as lengths. Forward + backward of one attention layer, timed (median of 20 calls), for BERT-base
   shapes (128 × 128) and ModernBERT-base ones (32 × 1024) with right-padded rows of random lengths: the dense
   mask, key lengths only, query and key lengths, and the library's path (which passes key lengths when every row
   is right-padded, `lax.cond`); the max abs difference of each to the dense mask on real rows (all rows for key
   lengths alone), and whether padded query rows come out finite.
"""

from __future__ import annotations

import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent      # keep bench/ (its tokenize.py shadows the standard library's) off
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE] + [str(_HERE.parent)]

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from minibert.nn.alibi import alibi_bias, alibi_slopes  # noqa: E402
from minibert.nn.attention import document_mask, dot_product_attention, padding_mask  # noqa: E402


def inputs(batch, seq, heads, dim, seed=0):
    """q, k, v in bf16 and a cotangent g in float32, (batch, seq, heads, dim) each."""
    keys = jax.random.split(jax.random.key(seed), 4)
    q, k, v = (jax.random.normal(key, (batch, seq, heads, dim), jnp.bfloat16) for key in keys[:3])
    return q, k, v, jax.random.normal(keys[3], (batch, seq, heads, dim), jnp.float32)


def right_padded(lengths, seq):
    return (np.arange(seq)[None, :] < np.asarray(lengths)[:, None]).astype(np.int32)


def cases(batch, seq, heads):
    """name → (mask, bias, real query rows (batch, seq) bool)."""
    lengths = [seq, int(0.8 * seq), int(0.3 * seq), seq][:batch]
    right = right_padded(lengths, seq)
    left = right[:, ::-1].copy()
    thirds = np.minimum(np.arange(seq) // (seq // 3) + 1, 3)                  # documents 1, 2, 3 per row …
    segments = np.where(right > 0, thirds[None, :], 0)                         # … then padding (0)
    alibi = alibi_bias(alibi_slopes(heads), jnp.arange(seq)[None])
    return {"right padding": (padding_mask(jnp.asarray(right)), None, right > 0),
            "left padding": (padding_mask(jnp.asarray(left)), None, left > 0),
            "packed documents": (document_mask(jnp.asarray(right), jnp.asarray(segments)), None, segments > 0),
            "ALiBi + right padding": (padding_mask(jnp.asarray(right)), alibi, right > 0)}


def attention_and_grads(attend, q, k, v, g, real):
    """out (float32), (dq, dk, dv) of Σ out·g over real rows, and the kernel that ran ("cuDNN" when the compiled
    program calls `__cudnn$fmha…`)."""
    weight = g * jnp.asarray(real)[:, :, None, None]
    loss = lambda q, k, v: jnp.sum(attend(q, k, v).astype(jnp.float32) * weight)
    compiled = jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2))).lower(q, k, v).compile()
    _, grads = compiled(q, k, v)
    kernel = "cuDNN" if "cudnn" in compiled.as_text().lower() else "XLA"
    return jax.jit(attend)(q, k, v).astype(jnp.float32), [d.astype(jnp.float32) for d in grads], kernel


def parity(batch, seq, heads, dim) -> list[dict]:
    q, k, v, g = inputs(batch, seq, heads, dim)
    f32 = [t.astype(jnp.float32) for t in (q, k, v)]
    rows = []
    for name, (mask, bias, real) in cases(batch, seq, heads).items():
        full = lambda t: None if t is None else jnp.broadcast_to(t, (batch, heads, seq, seq))
        paths = {"minibert fused": lambda q, k, v: dot_product_attention(q, k, v, bias, mask=mask,
                                                                         implementation="fused"),
                 "XLA": lambda q, k, v: jax.nn.dot_product_attention(
                     q, k, v, None if bias is None else full(bias).astype(q.dtype), full(mask), implementation="xla")}
        with jax.default_matmul_precision("highest"):
            reference = attention_and_grads(lambda q, k, v: dot_product_attention(q, k, v, bias, mask=mask),
                                            *f32, g, real)
        for path, attend in paths.items():
            out, grads, kernel = attention_and_grads(attend, q, k, v, g, real)
            rows.append({"case": name, "path": path, "kernel": kernel,
                         "out": float(jnp.abs(out - reference[0])[real].max()),
                         **{d: float(jnp.abs(a - b).max()) for d, a, b in zip(("dq", "dk", "dv"), grads, reference[1])},
                         "grad scale": float(max(jnp.abs(b).max() for b in reference[1]))})
            print(parity_line(rows[-1]), flush=True)
    return rows


def median_ms(function, *args, calls: int) -> float:
    jax.block_until_ready(function(*args))                                     # compile
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        jax.block_until_ready(function(*args))
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times))


def lengths_vs_mask(batch, seq, heads, dim, calls: int, seed=0) -> list[dict]:
    q, k, v, g = inputs(batch, seq, heads, dim, seed)
    rng = np.random.default_rng(seed)
    lengths = np.concatenate([[seq], rng.integers(seq // 5, seq + 1, batch - 1)]).astype(np.int32)
    real = right_padded(lengths, seq) > 0
    mask = padding_mask(jnp.asarray(real.astype(np.int32)))
    kernel = "cudnn" if jax.default_backend() == "gpu" else "xla"
    lens = jnp.asarray(lengths)
    variants = {
        "dense mask": lambda q, k, v: jax.nn.dot_product_attention(
            q, k, v, mask=jnp.broadcast_to(mask, (batch, heads, seq, seq)), implementation=kernel),
        "key lengths": lambda q, k, v: jax.nn.dot_product_attention(
            q, k, v, key_value_seq_lengths=lens, implementation=kernel),
        "query + key lengths": lambda q, k, v: jax.nn.dot_product_attention(
            q, k, v, query_seq_lengths=lens, key_value_seq_lengths=lens, implementation=kernel),
        "minibert fused": lambda q, k, v: dot_product_attention(q, k, v, mask=mask, implementation="fused"),
    }
    weight = g * jnp.asarray(real)[:, :, None, None]
    dense = None
    rows = []
    for name, attend in variants.items():
        step = jax.jit(jax.value_and_grad(lambda q, k, v: jnp.sum(attend(q, k, v).astype(jnp.float32) * weight),
                                          argnums=(0, 1, 2)))
        out = np.asarray(jax.jit(attend)(q, k, v).astype(jnp.float32))
        dense = out if dense is None else dense
        compare = real if name == "query + key lengths" else np.ones_like(real)
        rows.append({"shape": f"{batch} × {seq}", "real": f"{real.mean():.0%}", "variant": name,
                     "ms": median_ms(step, q, k, v, calls=calls), "diff": float(np.abs(out - dense)[compare].max()),
                     "padded rows finite": bool(np.isfinite(out).all()),
                     "padded rows zero": bool((out[~real] == 0).all())})
        print(timing_line(rows[-1], rows[0]), flush=True)
    return rows


PARITY_HEADER = ["| inputs | path (bf16) | kernel | max abs error: out | dq | dk | dv | (max abs f32 gradient) |",
                 "|---|---|---|---:|---:|---:|---:|---:|"]
TIMING_HEADER = ["| (batch × seq) | real tokens | padding as | forward + backward | × dense mask | max abs diff to "
                 "dense mask | padded rows finite / zero |", "|---|---:|---|---:|---:|---:|---|"]


def parity_line(r) -> str:
    return (f"| {r['case']} | {r['path']} | {r['kernel']} | {r['out']:.2e} | {r['dq']:.2e} | {r['dk']:.2e} "
            f"| {r['dv']:.2e} | {r['grad scale']:.2e} |")


def timing_line(r, dense) -> str:
    return (f"| {r['shape']} | {r['real']} | {r['variant']} | {r['ms']:.3f} ms | {dense['ms'] / r['ms']:.2f} "
            f"| {r['diff']:.1e} | {r['padded rows finite']} / {r['padded rows zero']} |")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny shapes, 2 timed calls (a CPU check)")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args(argv)
    print(f"{jax.devices()[0].device_kind} · jax {jax.__version__}\n", *PARITY_HEADER, sep="\n", flush=True)
    parity_rows = parity(4, 48, 2, 16) if args.smoke else parity(4, 512, 12, 64)
    print("", *TIMING_HEADER, sep="\n", flush=True)
    shapes = [(4, 32, 2, 16)] if args.smoke else [(128, 128, 12, 64), (32, 1024, 12, 64)]
    timing_rows = [r for shape in shapes for r in lengths_vs_mask(*shape, calls=2 if args.smoke else 10)]
    if args.json:
        args.json.write_text(json.dumps({"parity": parity_rows, "lengths": timing_rows}, indent=1))


if __name__ == "__main__":
    main()
