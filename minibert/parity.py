"""Weight parity with the PyTorch reference: the first thing to run on a Hugging Face checkpoint.

    minibert parity path/to/hf_dir            # or: minibert.parity.compare("path/to/hf_dir")

Loads the directory twice — in `transformers` (PyTorch, float32) and in minibert — runs the same random
batch (with padding and token types) through both, and reports for every stage (the embeddings, each layer's
hidden state, the pooler and the heads' logits) the largest absolute difference, the reference's scale (its
largest absolute value) and their ratio, the relative difference. Token-level outputs are compared at real
(unpadded) positions only. Needs torch and transformers (the `test` extra; ImportError without them).

A stage passes when max |ours − theirs| ≤ tolerance · max |theirs| (default `TOLERANCE`, 1e-5). Relative to the
stage's scale, not to each element (numpy's `allclose`), because float32 rounding of a sum is relative to the
magnitude of what is summed — the stage's scale — not to the result: an element that nearly cancels to 0 carries
the same absolute noise as its neighbours. And not absolute, because that noise grows with the activations:
all-MiniLM-L6-v2 at 512 tokens differs by 1–2e-5 in absolute terms on hidden states that reach ~10, at most
1.1e-6 of their scale at any stage, while one weight matrix scaled by 1.01 moves its layer by 1.7e-3 of it, and
even one entry of it scaled by 1.01 by 4.4e-5 (measured 2026-11-30; tests/test_parity.py checks the first two).
"""

from __future__ import annotations

import contextlib
import dataclasses

import jax
import numpy as np

from minibert.checkpoints.hf import from_pretrained

# minibert output field → the attribute names the same output has on `transformers` outputs
OUTPUT_NAMES = {
    "pooler_output": ("pooler_output",),
    "logits": ("logits", "prediction_logits"),
    "seq_relationship_logits": ("seq_relationship_logits",),
    "sop_logits": ("sop_logits",),
}


TOLERANCE = 1e-5             # the largest max |diff| / max |reference| that passes (see above)


@dataclasses.dataclass
class Row:
    name: str
    shape: tuple
    max_abs_diff: float          # max |ours − theirs| at real positions
    reference_scale: float       # max |theirs| at real positions

    @property
    def relative_diff(self) -> float:
        """max |diff| / max |reference|: 0 for equal outputs, inf for a difference on an all-zero reference."""
        if self.max_abs_diff == 0:
            return 0.0
        return self.max_abs_diff / self.reference_scale if self.reference_scale else float("inf")

    def passes(self, tolerance: float = TOLERANCE) -> bool:
        return self.relative_diff <= tolerance


def random_batch(config, batch_size: int, seq_len: int, seed: int) -> dict[str, np.ndarray]:
    """Random ids, a padding mask whose rows have different lengths, and random token types."""
    rng = np.random.default_rng(seed)
    lengths = np.linspace(seq_len, max(2, seq_len // 2), batch_size).astype(int)
    batch = {
        "input_ids": rng.integers(0, config.vocab_size, (batch_size, seq_len)),
        "attention_mask": (np.arange(seq_len)[None, :] < lengths[:, None]).astype(np.int64),
    }
    if getattr(config, "type_vocab_size", None):
        batch["token_type_ids"] = rng.integers(0, config.type_vocab_size, (batch_size, seq_len))
    return batch


@contextlib.contextmanager
def no_progress_bars():
    """`transformers`' progress bars ("Loading weights") off, as they were on exit. Its warnings stay: a key the
    checkpoint lacks (randomly initialised by `transformers`) explains a stage that fails."""
    from transformers.utils import logging

    bars = logging.is_progress_bar_enabled()
    logging.disable_progress_bar()
    try:
        yield
    finally:
        if bars:
            logging.enable_progress_bar()


def load_reference(path):
    """The `transformers` model class that `config.json` names, loaded in float32 and eval mode."""
    import transformers

    with no_progress_bars():
        config = transformers.AutoConfig.from_pretrained(path)
        architecture = (config.architectures or [None])[0]
        model_class = getattr(transformers, architecture) if architecture else transformers.AutoModel
        return model_class.from_pretrained(path, dtype="float32").eval()


def compare(path, *, batch_size: int = 3, seq_len: int = 16, seed: int = 0) -> list[Row]:
    """Per-stage differences between minibert and `transformers` on one random batch of `batch_size` rows of
    `seq_len` tokens (at most the model's max_position_embeddings). Raises ImportError without torch or
    transformers, ValueError when a stage's shapes differ, and the loaders' errors for a bad directory."""
    try:
        import torch
        import transformers  # noqa: F401
    except ImportError as error:
        raise ImportError(f"minibert parity needs torch and transformers (the test extra: pip install torch "
                          f"transformers), and {error.name} is not installed") from error

    model = from_pretrained(path)
    reference = load_reference(path)
    batch = random_batch(model.config, batch_size, min(seq_len, getattr(model.config, "max_position_embeddings", seq_len)), seed)
    with jax.default_matmul_precision("float32"):
        ours = model(**batch, output_hidden_states=True)
    with torch.no_grad():
        theirs = reference(**{k: torch.from_numpy(v) for k, v in batch.items()}, output_hidden_states=True)

    real = batch["attention_mask"].astype(bool)
    rows = []

    def add(name, a, b):
        a, b = np.asarray(a, np.float32), b.detach().float().numpy()
        if a.shape != b.shape:
            raise ValueError(f"{name}: minibert shape {a.shape} but transformers shape {b.shape}")
        diff, scale = np.abs(a - b), np.abs(b)
        if diff.ndim >= 2 and diff.shape[:2] == real.shape:
            diff, scale = diff[real], scale[real]
        rows.append(Row(name, a.shape, float(diff.max()), float(scale.max())))

    for i, (a, b) in enumerate(zip(ours.hidden_states, theirs.hidden_states)):
        add("embeddings" if i == 0 else f"layer {i - 1}", a, b)
    for field, names in OUTPUT_NAMES.items():
        value = getattr(ours, field)
        match = [getattr(theirs, n) for n in names if getattr(theirs, n, None) is not None]
        if value is not None and match:
            add(field, value, match[0])
    return rows


def format_table(rows: list[Row], tolerance: float = TOLERANCE) -> str:
    """One line per stage: its shape, max |diff|, max |reference|, their ratio and whether it passes."""
    lines = [f"{'stage':<26} {'shape':<20} {'max |diff|':>11} {'max |ref|':>11} {'relative':>11}  ok"]
    for r in rows:
        lines.append(f"{r.name:<26} {str(r.shape):<20} {r.max_abs_diff:>11.3e} {r.reference_scale:>11.3e} "
                     f"{r.relative_diff:>11.3e}  {'yes' if r.passes(tolerance) else 'NO'}")
    return "\n".join(lines)
