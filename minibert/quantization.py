"""Post-training int8 weight quantization: a model directory whose weight matrices are stored as 8-bit integers
with one float32 scale per output channel, dequantized to float32 when it is loaded.

*Post-training*: nothing is retrained or calibrated; the trained weights are rounded to a grid. *Weight-only*:
activations stay float32 and inference runs the ordinary float model; only the file (what is shipped to a
phone) shrinks, to about a quarter. This is the affine scheme r = S (q − Z) of Jacob et al. 2018 ("Quantization
and Training of Neural Networks for Efficient Integer-Arithmetic-Only Inference", §2.1), symmetric (zero point
Z = 0, so q ∈ [−127, 127] and 0.0 is exact; −128 is left unused so that the grid is symmetric) and with one
scale S per output channel instead of one per tensor, so a row of small weights is not rounded on the grid of
the largest one. MobileBERT (Sun et al. 2020) is the model the BERT family ships to phones, quantized.

    per channel along axis 0:  S_i = max_j |w_ij| / 127          (1.0 for an all-zero row)
    quantize:                  q_ij = clip(round(w_ij / S_i), −127, 127)       int8
    dequantize:                ŵ_ij = q_ij · S_i                                float32
    error:                     |w_ij − ŵ_ij| ≤ S_i / 2 = max_j |w_ij| / 254    (under 0.4% of the row's largest weight)

Axis 0 is the output channel of a PyTorch-layout `Linear` weight (out, in), the token of an embedding table
(vocab, hidden) and the output channel of a convolution kernel (out, in/groups, k). Weights kept in another
layout keep axis 0 too (MobileBERT's untransposed MLM `cls.predictions.dense.weight` (hidden − embedding,
vocab): one scale per row; ConvBERT's grouped FFN weight (groups, in/groups, out/groups): one scale per group).

Which tensors: every floating tensor with two or more axes — every weight matrix, the embeddings included.
One-axis tensors (biases, LayerNorm / NoNorm weights) stay float32: they are a fraction of a percent of the
parameters, and the normalisation gains are the ones whose rounding would hurt most. Integer tensors
(`position_ids` buffers in some checkpoints) are copied as they are.

The saved format is a Hugging Face directory:
- `model.int8.safetensors`: each quantized tensor as int8 under its own key, its scales as float32
  (out, 1, …, 1) under `<key>_scale` (the naming of Hugging Face's own int8 quantizers); every other tensor as
  it was. The file is deliberately not `model.safetensors`: `transformers` does not know this format, and
  finding no weight file it stops with a clear error instead of loading the integers as if they were weights;
- `config.json`: the input's, plus `"quantization_config": {"quant_method": "minibert_int8", "bits": 8,
  "symmetric": true, "per_channel_axis": 0}`;
- the tokenizer files the input has.

`minibert.from_pretrained(dir)` reads it back into a float32 model: `checkpoints/files.read_state_dict` hands the
tensors to `dequantize_state_dict` (in `checkpoints/files.py`, the readers' table), which replaces every `<key>` and `<key>_scale` pair by the float32 ŵ, and
the usual loader then checks keys and shapes. The config read back does not carry `quantization_config` (the
model holds float32 weights), so saving that model again writes an ordinary float32 directory — the way back to
`transformers`.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np

from minibert.checkpoints import files
from minibert.checkpoints.files import CONFIG_NAME, INT8_METHOD as QUANT_METHOD, SCALE_SUFFIX, dequantize
from minibert.checkpoints.files import INT8_WEIGHTS as WEIGHTS_NAME
from minibert.models import auto

QUANTIZATION_CONFIG = {"quant_method": QUANT_METHOD, "bits": 8, "symmetric": True, "per_channel_axis": 0}
QMAX = 127                                       # symmetric: q ∈ [−127, 127]
TOKENIZER_FILES = ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")
REPORT_NAME = "quantization_report.json"


def quantize(weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(q int8 with weight's shape, scale float32 (out, 1, …, 1)): symmetric, one scale per index of axis 0."""
    weight = np.asarray(weight, np.float32)
    if weight.ndim < 2:
        raise ValueError(f"per-channel quantization needs a tensor with two or more axes, got shape {weight.shape}")
    peak = np.max(np.abs(weight), axis=tuple(range(1, weight.ndim)), keepdims=True)
    scale = np.where(peak > 0, peak / QMAX, 1.0).astype(np.float32)           # S_i = max_j |w_ij| / 127
    q = np.clip(np.round(weight / scale), -QMAX, QMAX).astype(np.int8)        # q_ij = clip(round(w_ij / S_i))
    return q, scale


def quantizes(tensor: np.ndarray) -> bool:
    """Whether the tensor is stored as int8: floating, with two or more axes."""
    return np.issubdtype(tensor.dtype, np.floating) and tensor.ndim >= 2


@dataclasses.dataclass
class QuantizedTensor:
    key: str
    shape: tuple[int, ...]
    max_abs: float             # max |w|
    max_abs_error: float       # max |w − ŵ|
    bound: float               # max_i S_i / 2 = max |w| / 254

    @property
    def relative_error(self) -> float:
        return self.max_abs_error / self.max_abs if self.max_abs else 0.0


@dataclasses.dataclass
class QuantizationReport:
    quantized: list[QuantizedTensor]    # one row per int8 tensor
    kept: list[str]                     # keys stored as they were
    float_bytes: int                    # the input's weight file(s)
    int8_bytes: int                     # the output's model.int8.safetensors

    @property
    def ratio(self) -> float:
        return self.int8_bytes / self.float_bytes

    @property
    def worst(self) -> QuantizedTensor:
        """The tensor with the largest error relative to its largest weight."""
        return max(self.quantized, key=lambda row: row.relative_error)

    def to_dict(self) -> dict:
        return {"quantization_config": QUANTIZATION_CONFIG, "float_bytes": self.float_bytes,
                "int8_bytes": self.int8_bytes, "ratio": self.ratio, "kept": self.kept,
                "tensors": [dataclasses.asdict(row) | {"relative_error": row.relative_error} for row in self.quantized]}


def quantize_pretrained(model_dir: str | Path, out_dir: str | Path) -> QuantizationReport:
    """Write the int8 version of the Hugging Face directory `model_dir` to `out_dir` (format: module docstring)."""
    model_dir, out_dir = Path(model_dir), Path(out_dir)
    if not model_dir.is_dir():
        raise FileNotFoundError(f"{model_dir} does not exist or is not a directory")
    if out_dir.resolve() == model_dir.resolve():
        raise ValueError(f"the output directory is the model directory {model_dir}: choose another one")
    values = files.read_config_dict(model_dir)
    auto.config_class_for(values)                              # a model directory of a family minibert knows
    if "quantization_config" in values:
        raise ValueError(f"{model_dir} is already quantized (config.json quantization_config "
                         f"{values['quantization_config']})")
    weight_files = files.weight_files(model_dir)
    tensors = files.read_state_dict(model_dir)
    if any(t.dtype == np.int8 for t in tensors.values()):
        raise ValueError(f"{model_dir} already holds int8 tensors: it is already quantized")

    clashes = [k + SCALE_SUFFIX for k in tensors if quantizes(tensors[k]) and k + SCALE_SUFFIX in tensors]
    if clashes:
        raise ValueError(f"{model_dir} has tensors named like the scales of others: {', '.join(clashes)}")

    stored, rows, kept = {}, [], []
    for key, weight in tensors.items():
        if not quantizes(weight):
            stored[key] = weight
            kept.append(key)
            continue
        q, scale = quantize(weight)
        stored[key], stored[key + SCALE_SUFFIX] = q, scale
        rows.append(QuantizedTensor(key, tuple(weight.shape), float(np.max(np.abs(weight))),
                                    float(np.max(np.abs(weight - dequantize(q, scale)))), float(np.max(scale) / 2)))

    out_dir.mkdir(parents=True, exist_ok=True)
    files.save_safetensors({k: np.ascontiguousarray(v) for k, v in stored.items()}, out_dir / WEIGHTS_NAME)
    (out_dir / CONFIG_NAME).write_text(json.dumps(values | {"quantization_config": QUANTIZATION_CONFIG}, indent=2,
                                                  sort_keys=True) + "\n", encoding="utf-8")
    for name in TOKENIZER_FILES:
        if (model_dir / name).is_file():
            shutil.copyfile(model_dir / name, out_dir / name)
    return QuantizationReport(rows, kept, sum(f.stat().st_size for f in weight_files),
                              (out_dir / WEIGHTS_NAME).stat().st_size)
