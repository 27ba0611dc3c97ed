"""The files of a Hugging Face model directory, read with one clear error each: `config.json`, and the weights
through one small table of readers (safetensors, PyTorch's pickle, minibert's int8 safetensors); and the one
safetensors writer (`save_safetensors`), which gives the file the permissions of every other file written.

Every file-format problem — a truncated or garbage weight file, a sharded index naming a missing shard, invalid
JSON, a config that is not a JSON object — is a `CheckpointError` that names the file and what is wrong with it.
This module imports nothing of minibert but `config.py`, so the loader (`checkpoints/hf.py`) and the quantizer
(`quantization.py`) both build on it without importing each other.

The int8 format (written by `quantization.quantize_pretrained`, described there): `model.int8.safetensors` holds
each quantized tensor as int8 under its key and its per-channel scales as float32 under `<key>_scale`; reading
it returns float32 ŵ = q · S (`dequantize_state_dict`).
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import numpy as np

from minibert.config import CONFIG_NAME
SAFETENSORS = "model.safetensors"
SAFETENSORS_INDEX = "model.safetensors.index.json"
TORCH_BIN = "pytorch_model.bin"
TORCH_BIN_INDEX = "pytorch_model.bin.index.json"
INT8_WEIGHTS = "model.int8.safetensors"
INT8_METHOD = "minibert_int8"
SCALE_SUFFIX = "_scale"


class CheckpointError(ValueError):
    """A checkpoint that cannot be read or does not fit the model; the message names the file or every offending key."""


def read_json(file: Path) -> dict[str, Any]:
    """A JSON object from `file`. Raises CheckpointError naming the file when it is not valid JSON or not an object."""
    try:
        values = json.loads(Path(file).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{file} is not valid JSON: {e}") from e
    if not isinstance(values, dict):
        raise CheckpointError(f"{file} must hold a JSON object, got a {type(values).__name__}")
    return values


def read_config_dict(path: Path) -> dict[str, Any]:
    """`config.json` of a model directory as a dict. Raises FileNotFoundError without one, CheckpointError when
    it is not a JSON object."""
    if not (path / CONFIG_NAME).is_file():
        raise FileNotFoundError(f"{path} has no {CONFIG_NAME}: not a Hugging Face model directory")
    return read_json(path / CONFIG_NAME)


def weight_files(path: Path) -> list[Path]:
    """The file(s) holding a directory's weights, in order of preference: int8 when config.json says
    `quantization_config`, else safetensors (single, or the shards its index lists), then PyTorch's
    pytorch_model.bin (single or sharded). Raises FileNotFoundError when there are none, CheckpointError for an
    index that is not one or names a shard that is not there."""
    if "quantization_config" in read_config_dict(path):
        if not (path / INT8_WEIGHTS).is_file():
            raise FileNotFoundError(f"{path} is quantized (config.json quantization_config) but has no {INT8_WEIGHTS}")
        return [path / INT8_WEIGHTS]
    for single, index in ((SAFETENSORS, SAFETENSORS_INDEX), (TORCH_BIN, TORCH_BIN_INDEX)):
        if (path / single).is_file():
            return [path / single]
        if (path / index).is_file():
            return _shards(path / index)
    raise FileNotFoundError(f"{path} has no weights: expected {SAFETENSORS}, {SAFETENSORS_INDEX} or {TORCH_BIN}")


def _shards(index: Path) -> list[Path]:
    weight_map = read_json(index).get("weight_map")
    if not isinstance(weight_map, dict) or not all(isinstance(v, str) for v in weight_map.values()):
        raise CheckpointError(f"{index} has no weight_map of tensor name → shard file")
    shards = [index.parent / name for name in sorted(set(weight_map.values()))]
    absent = [shard.name for shard in shards if not shard.is_file()]
    if absent:
        raise CheckpointError(f"{index} names shard(s) that are not in {index.parent}: {', '.join(absent)}")
    return shards


def read_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """All tensors of a model directory as float32/int numpy arrays, keyed by checkpoint name (int8 ones
    dequantized). Raises CheckpointError naming the file that cannot be read."""
    path = Path(path)
    quantization_config = read_config_dict(path).get("quantization_config")
    tensors = {}
    for file in weight_files(path):
        tensors.update(_read(file))
    return tensors if quantization_config is None else dequantize_state_dict(tensors, quantization_config)


def _read(file: Path) -> dict[str, np.ndarray]:
    reader = READERS[file.suffix]
    try:
        return reader(file)
    except (ImportError, CheckpointError):
        raise
    except Exception as e:  # each library raises its own types (SafetensorError, pickle's, zipfile's, ...)
        raise CheckpointError(f"{file} is not a readable {file.suffix[1:]} weight file "
                              f"(truncated or corrupt?): {type(e).__name__}: {e}") from e


def _read_safetensors(file: Path) -> dict[str, np.ndarray]:
    from safetensors import safe_open

    with safe_open(file, framework="flax") as f:  # the flax reader handles bfloat16, numpy's does not
        return {k: _to_numpy(f.get_tensor(k)) for k in f.keys()}


def _read_torch(file: Path) -> dict[str, np.ndarray]:
    try:
        import torch
    except ImportError as e:
        raise ImportError(f"{file} is a PyTorch pickle; reading it needs torch installed (or convert it to safetensors)") from e
    state = torch.load(file, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{file} does not hold a state dict of tensors")
    return {k: v.float().numpy() if v.is_floating_point() else v.numpy() for k, v in state.items()}


def _to_numpy(array) -> np.ndarray:
    import jax.numpy as jnp

    array = jnp.asarray(array)
    return np.asarray(array.astype(jnp.float32) if jnp.issubdtype(array.dtype, jnp.floating) else array)


READERS = {".safetensors": _read_safetensors, ".bin": _read_torch}   # file suffix → reader


def save_safetensors(tensors: dict[str, np.ndarray], file: str | Path) -> None:
    """`safetensors.numpy.save_file` (metadata format "pt", which `transformers` expects), then the mode a plain
    `open(file, "w")` leaves: an overwritten file's own, else 0o666 less the umask (0o644 under the usual 022).

    safetensors ≥ 0.8 writes a temporary file and renames it over `file` (atomic: a reader never sees half a
    file), but the temporary file's 0o600 comes along (safetensors issue #782); the rename stays, the mode is
    set after it."""
    from safetensors.numpy import save_file

    file = Path(file)
    mode = stat.S_IMODE(file.stat().st_mode) if file.exists() else 0o666 & ~_umask()
    save_file(tensors, str(file), metadata={"format": "pt"})
    os.chmod(file, mode)


def _umask() -> int:
    """The process's umask: reading it means setting it, so set 0 and put it back at once (a file another thread
    creates in that instant would not be masked)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def dequantize(q: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """ŵ = q · S, float32."""
    return np.asarray(q, np.float32) * np.asarray(scale, np.float32)          # ŵ_ij = q_ij · S_i


def dequantize_state_dict(tensors: dict[str, np.ndarray], quantization_config: dict) -> dict[str, np.ndarray]:
    """An int8 checkpoint's tensors with every int8 `<key>` and its `<key>_scale` replaced by the float32 `<key>`.
    Raises CheckpointError for another quantization method, or an int8 tensor without its scale (and the like)."""
    method = quantization_config.get("quant_method") if isinstance(quantization_config, dict) else None
    if method != INT8_METHOD:
        raise CheckpointError(f"config.json quantization_config has quant_method {method!r}: minibert reads only "
                              f"{INT8_METHOD!r} (its own int8 format)")
    quantized = [k for k, v in tensors.items() if v.dtype == np.int8]
    unscaled = [k for k in quantized if k + SCALE_SUFFIX not in tensors]
    orphans = [k for k in tensors if k.endswith(SCALE_SUFFIX) and k[:-len(SCALE_SUFFIX)] not in tensors]
    misshaped = [f"{k + SCALE_SUFFIX} {tensors[k + SCALE_SUFFIX].shape} for {k} {tensors[k].shape}"
                 for k in quantized if k not in unscaled and
                 tensors[k + SCALE_SUFFIX].shape != (tensors[k].shape[0],) + (1,) * (tensors[k].ndim - 1)]
    if unscaled or orphans or misshaped:
        parts = [f"{title} ({len(keys)}):\n  " + "\n  ".join(keys) for title, keys in
                 (("int8 tensors without a scale", unscaled), ("scales without their tensor", orphans),
                  ("scales of the wrong shape", misshaped)) if keys]
        raise CheckpointError("the quantized checkpoint is incomplete:\n" + "\n".join(parts))
    quantized = set(quantized)
    scales = {k + SCALE_SUFFIX for k in quantized}
    return {k: dequantize(v, tensors[k + SCALE_SUFFIX]) if k in quantized else v
            for k, v in tensors.items() if k not in scales}
