"""Weight parity with the PyTorch reference: the first thing to run on a Hugging Face checkpoint.

    minibert parity path/to/hf_dir            # or: minibert.parity.compare("path/to/hf_dir")

Loads the directory twice — in `transformers` (PyTorch, float32) and in minibert — runs the same random
batch (with padding and token types) through both, and reports the largest absolute difference of every
stage: the embeddings, each layer's hidden state, the pooler and the heads' logits. Token-level outputs are
compared at real (unpadded) positions only. Needs torch and transformers (the `test` extra).
"""

from __future__ import annotations

import dataclasses

import jax
import numpy as np

from minibert.checkpoints.hf import from_pretrained

# minibert output field → the attribute names the same output has on `transformers` outputs
OUTPUT_NAMES = {
    "pooler_output": ("pooler_output",),
    "logits": ("logits", "prediction_logits"),
    "seq_relationship_logits": ("seq_relationship_logits",),
}


@dataclasses.dataclass
class Row:
    name: str
    shape: tuple
    max_abs_diff: float


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


def load_reference(path):
    """The `transformers` model class that `config.json` names, loaded in float32 and eval mode."""
    import transformers

    config = transformers.AutoConfig.from_pretrained(path)
    architecture = (config.architectures or [None])[0]
    model_class = getattr(transformers, architecture) if architecture else transformers.AutoModel
    return model_class.from_pretrained(path, dtype="float32").eval()


def compare(path, *, batch_size: int = 3, seq_len: int = 16, seed: int = 0) -> list[Row]:
    """Per-stage max abs differences between minibert and `transformers` on one random batch."""
    import torch

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
        diff = np.abs(a - b)
        if diff.ndim >= 2 and diff.shape[:2] == real.shape:
            diff = diff[real]
        rows.append(Row(name, a.shape, float(diff.max())))

    for i, (a, b) in enumerate(zip(ours.hidden_states, theirs.hidden_states)):
        add("embeddings" if i == 0 else f"layer {i - 1}", a, b)
    for field, names in OUTPUT_NAMES.items():
        value = getattr(ours, field)
        match = [getattr(theirs, n) for n in names if getattr(theirs, n, None) is not None]
        if value is not None and match:
            add(field, value, match[0])
    return rows


def format_table(rows: list[Row], tolerance: float) -> str:
    lines = [f"{'stage':<26} {'shape':<20} {'max |diff|':>12}  ok"]
    for r in rows:
        lines.append(f"{r.name:<26} {str(r.shape):<20} {r.max_abs_diff:>12.3e}  {'yes' if r.max_abs_diff <= tolerance else 'NO'}")
    return "\n".join(lines)
