"""Load and save Hugging Face model directories: `config.json` + `model.safetensors`.

minibert modules are named like their `transformers` counterparts and store weights in PyTorch's layout,
so a parameter's path in the module tree, joined with dots, *is* its checkpoint key, with the same shape.
What remains is bookkeeping, done here once for every family:
- reading every file format a directory may hold (single or sharded safetensors; `pytorch_model.bin`
  when torch is installed), old names (`gamma`/`beta` for LayerNorm weight/bias) and trainer state dicts
  whose every key starts with `model.`; config dialects that a family `claims`;
- the base-model prefix (`bert.`): a bare-encoder checkpoint loads into a model with heads and back;
- keys that are not parameters (`position_ids` buffers, tied copies of the word embeddings), per class;
- one error naming *all* missing, unexpected and mis-shaped weights.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import jax.numpy as jnp
import numpy as np
from flax import nnx

from minibert.config import CONFIG_NAME
from minibert.models import registry

SAFETENSORS = "model.safetensors"
SAFETENSORS_INDEX = "model.safetensors.index.json"
TORCH_BIN = "pytorch_model.bin"
TORCH_BIN_INDEX = "pytorch_model.bin.index.json"
LEGACY_NAMES = {"gamma": "weight", "beta": "bias"}
TRAINER_PREFIX = "model."


class CheckpointError(ValueError):
    """A checkpoint that does not fit the model; the message names every offending key."""


def read_config(path: str | Path):
    path = Path(path)
    if not (path / CONFIG_NAME).is_file():
        raise FileNotFoundError(f"{path} has no {CONFIG_NAME}: not a Hugging Face model directory")
    values = json.loads((path / CONFIG_NAME).read_text(encoding="utf-8"))
    values.pop("quantization_config", None)  # int8 weights are dequantized on load (read_state_dict)
    dialect = [c for c in registry.CONFIGS.values() if c.claims(values)]
    return (dialect[0] if dialect else registry.config_class_for(values.get("model_type"))).from_dict(values)


def read_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """All tensors of a model directory as float32/int numpy arrays, keyed by checkpoint name; those of an int8
    directory (config.json `quantization_config`, written by minibert/quantization.py) dequantized."""
    from minibert import quantization  # (quantization.py imports this module)

    path = Path(path)
    config = json.loads((path / CONFIG_NAME).read_text(encoding="utf-8")) if (path / CONFIG_NAME).is_file() else {}
    if "quantization_config" in config:
        if not (path / quantization.WEIGHTS_NAME).is_file():
            raise FileNotFoundError(f"{path} is quantized (config.json quantization_config) but has no "
                                    f"{quantization.WEIGHTS_NAME}")
        tensors = _read_safetensors(path / quantization.WEIGHTS_NAME)
        return quantization.dequantize_state_dict(tensors, config["quantization_config"])
    return _read_tensors(path)


def weight_files(path: Path) -> list[Path]:
    """The file(s) holding a directory's weights, in order of preference: safetensors (single, or the shards its
    index lists), then PyTorch's pytorch_model.bin (single or sharded)."""
    for single, index in ((SAFETENSORS, SAFETENSORS_INDEX), (TORCH_BIN, TORCH_BIN_INDEX)):
        if (path / single).is_file():
            return [path / single]
        if (path / index).is_file():
            shards = json.loads((path / index).read_text(encoding="utf-8"))["weight_map"].values()
            return [path / shard for shard in sorted(set(shards))]
    raise FileNotFoundError(f"{path} has no weights: expected {SAFETENSORS}, {SAFETENSORS_INDEX} or {TORCH_BIN}")


def _read_tensors(path: Path) -> dict[str, np.ndarray]:
    tensors = {}
    for file in weight_files(path):
        tensors.update(_read_torch(file) if file.suffix == ".bin" else _read_safetensors(file))
    return tensors


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
    return {k: v.float().numpy() if v.is_floating_point() else v.numpy() for k, v in state.items()}


def _to_numpy(array) -> np.ndarray:
    array = jnp.asarray(array)
    return np.asarray(array.astype(jnp.float32) if jnp.issubdtype(array.dtype, jnp.floating) else array)


def model_state_dict(model: nnx.Module) -> dict[str, nnx.Param]:
    """The model's parameters keyed by their checkpoint names (module paths joined by dots)."""
    return {".".join(map(str, path)): param for path, param in nnx.to_flat_state(nnx.state(model, nnx.Param))}


def load_state_dict(model, tensors: dict[str, np.ndarray]) -> None:
    """Copy checkpoint tensors into `model`, or raise one CheckpointError naming every problem."""
    expected = model_state_dict(model)
    tensors = normalise_keys(model, tensors, expected)
    missing = [f"{k} {tuple(v.shape)}" for k, v in expected.items() if k not in tensors]
    unexpected = [f"{k} {tuple(v.shape)}" for k, v in tensors.items() if k not in expected]
    misshaped = [f"{k}: checkpoint {tuple(v.shape)}, model {tuple(expected[k].shape)}"
                 for k, v in tensors.items() if k in expected and tuple(v.shape) != tuple(expected[k].shape)]
    if missing or unexpected or misshaped:
        parts = [f"{title} ({len(keys)}):\n  " + "\n  ".join(keys)
                 for title, keys in (("missing", missing), ("unexpected", unexpected), ("mis-shaped", misshaped)) if keys]
        raise CheckpointError(f"checkpoint does not fit {type(model).__name__}:\n" + "\n".join(parts))
    for key, param in expected.items():
        param.set_value(jnp.asarray(tensors[key], dtype=param.dtype))


def normalise_keys(model, tensors: dict, expected: dict) -> dict:
    """A checkpoint's keys as `model`'s parameters are named: trainer prefixes stripped, old LayerNorm names
    (gamma/beta) renamed, the base-model prefix added or removed, and keys the class says to ignore dropped."""
    if all(k.startswith(TRAINER_PREFIX) for k in tensors):                  # a Composer / trainer state dict
        tensors = {k[len(TRAINER_PREFIX):]: v for k, v in tensors.items()}
    renamed = {}
    for key, value in tensors.items():
        *head, leaf = key.split(".")
        renamed[".".join([*head, LEGACY_NAMES.get(leaf, leaf)])] = value
    prefix = model.base_model_prefix + "." if model.base_model_prefix else None
    if prefix and not any(k.startswith(prefix) for k in renamed):          # bare encoder → model with heads
        renamed = {prefix + k: v for k, v in renamed.items()}
    base_prefix = _base_prefix_of(model, renamed)
    if base_prefix:                                                          # model with heads → bare encoder
        renamed = {k[len(base_prefix):]: v for k, v in renamed.items() if k.startswith(base_prefix)}
    ignored = [re.compile(p) for p in model.ignored_checkpoint_keys]
    return {k: v for k, v in renamed.items() if k in expected or not any(p.search(k) for p in ignored)}


def _base_prefix_of(model, tensors: dict) -> str | None:
    """When a bare encoder reads a checkpoint saved with heads, the prefix to strip (e.g. 'bert.')."""
    if not model.is_base_model:
        return None
    for model_class in registry.MODELS.values():
        prefix = model_class.base_model_prefix + "."
        if model_class.config_class is model.config_class and model_class.base_model_prefix and \
                any(k.startswith(prefix) for k in tensors):
            return prefix
    return None


def from_pretrained(path: str | Path, *, model_class: type | None = None, dtype=jnp.float32):
    """Build the model that `config.json` names (or `model_class`) and load its weights; eval mode."""
    config = read_config(path)
    model_class = model_class or registry.model_class_for(config)
    if model_class.config_class is not type(config):
        raise ValueError(f"{model_class.__name__} expects a {model_class.config_class.model_type!r} config, "
                         f"{path} holds a {config.model_type!r} one")
    model = model_class(config, dtype=dtype, rngs=nnx.Rngs(0))
    load_state_dict(model, read_state_dict(path))
    model.eval()
    return model


def save_pretrained(model, path: str | Path) -> None:
    """Write `config.json` (with this class in `architectures`) and `model.safetensors`, float32."""
    from safetensors.numpy import save_file

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    config = model.config
    config.architectures = [type(model).__name__]
    config.save(path)
    tensors = {k: np.ascontiguousarray(np.asarray(v[...], dtype=np.float32)) for k, v in model_state_dict(model).items()}
    save_file(tensors, str(path / SAFETENSORS), metadata={"format": "pt"})
