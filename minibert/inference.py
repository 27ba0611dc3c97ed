"""Running a model over many rows of host arrays, for the pipelines, evaluation and fine-tuning.

    inputs = encoder_inputs(model, tokenizer(texts, padding=True, return_tensors="np"))  # input_ids, attention_mask, …
    out = batched_forward(model, inputs, batch_size=32, fields=("logits",))   # {"logits": (n, …) float32}

Not to be confused with `minibert.training.batch.model_inputs`, which picks a training batch's fields (labels,
masked positions, packed rows) for a model's loss; these are the three encoder inputs only.
"""

from __future__ import annotations

import numpy as np

ENCODER_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def encoder_inputs(model, arrays: dict) -> dict[str, np.ndarray]:
    """input_ids, attention_mask, token_type_ids of `arrays` (a dict or a tokenizer's batch) as numpy; token types
    zeroed for a family without them (ModernBERT) or when the tokenizer gave none (RoBERTa's). Raises KeyError
    naming a missing input."""
    missing = [k for k in ENCODER_INPUTS if k not in arrays and k != "token_type_ids"]
    if missing:
        raise KeyError(f"the arrays have no {', '.join(missing)} (they have {', '.join(arrays)})")
    inputs = {k: np.asarray(arrays[k]) for k in ENCODER_INPUTS if k in arrays}
    if "token_type_ids" not in inputs or getattr(model.config, "type_vocab_size", None) is None:
        # a tokenizer without token types (RoBERTa's) or a family without them (ModernBERT)
        inputs["token_type_ids"] = np.zeros_like(inputs["input_ids"])
    return inputs


def batched_forward(model, arrays: dict, batch_size: int,
                    fields: tuple[str, ...] = ("logits",)) -> dict[str, np.ndarray]:
    """Run `model` over (n, …) arrays in batches of `batch_size` (the last one filled up by repeating its last
    row, so that every call has one batch size; the model pads the sequence to its bucket); the output `fields`,
    as (n, …) float32 numpy."""
    inputs = encoder_inputs(model, arrays)
    n = len(inputs["input_ids"])
    batch_size = min(batch_size, n)
    outputs = {name: [] for name in fields}
    for start in range(0, n, batch_size):
        rows = np.minimum(np.arange(start, start + batch_size), n - 1)
        out = model(**{k: v[rows] for k, v in inputs.items()})
        for name in fields:
            outputs[name].append(np.asarray(getattr(out, name), np.float32)[:min(batch_size, n - start)])
    return {name: np.concatenate(parts) for name, parts in outputs.items()}
