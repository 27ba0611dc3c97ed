"""Load and save Hugging Face models: `config.json` + weights, from a directory or a Hub name.

minibert modules are named like their `transformers` counterparts and store weights in PyTorch's layout,
so a parameter's path in the module tree, joined with dots, *is* its checkpoint key, with the same shape.
What remains is bookkeeping, done here once for every family, as `transformers`' `from_pretrained` does it:
- the files (`checkpoints/files.py`: safetensors single or sharded, `pytorch_model.bin`, int8) and Hub names
  (`checkpoints/hub.py`); config dialects that a family `claims` (`models/auto.py`);
- key spellings: old names (`gamma`/`beta` for LayerNorm weight/bias), trainer state dicts whose every key starts
  with `model.`, the base-model prefix (`bert.`) added or removed, so a bare encoder loads into a model with heads
  and back;
- keys that are not parameters: buffers a model recomputes (`position_ids`, `embeddings.token_type_ids`, rotary
  `inv_freq`), wherever they appear, and tied copies of the word embeddings, per class (`ignored_checkpoint_keys`);
- what does not match, reported in one warning (logger "minibert.checkpoints.hf") as transformers does: weights
  the model has and the checkpoint lacks keep the model's own initialisation (a fresh head, a pooler), weights the
  model does not use are dropped (pretraining heads), and mis-shaped weights are an error unless
  `ignore_mismatched_sizes=True` (then initialised too). A checkpoint holding none of the encoder is an error.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import jax.numpy as jnp
import numpy as np
from flax import nnx

from minibert.checkpoints import hub
from minibert.checkpoints.files import SAFETENSORS, CheckpointError, read_state_dict, save_safetensors, weight_files
from minibert.config import set_labels
from minibert.models import auto
from minibert.models.auto import read_config

__all__ = ["CheckpointError", "from_pretrained", "load_state_dict", "model_state_dict", "read_config",
           "read_state_dict", "save_pretrained", "weight_files"]

logger = logging.getLogger(__name__)

LEGACY_NAMES = {"gamma": "weight", "beta": "bias"}
TRAINER_PREFIX = "model."
# buffers that every family recomputes: present in some checkpoints, never parameters (transformers ignores them too)
RECOMPUTED_BUFFERS = (r"(^|\.)position_ids$", r"(^|\.)embeddings\.token_type_ids$", r"inv_freq$")


def model_state_dict(model: nnx.Module) -> dict[str, nnx.Param]:
    """The model's parameters keyed by their checkpoint names (module paths joined by dots)."""
    return {".".join(map(str, path)): param for path, param in nnx.to_flat_state(nnx.state(model, nnx.Param))}


def load_state_dict(model, tensors: dict[str, np.ndarray], *, ignore_mismatched_sizes: bool = False) -> dict:
    """Copy checkpoint tensors into `model`, as transformers loads a state dict: what the model lacks is dropped,
    what the checkpoint lacks keeps its initialisation. Returns transformers' loading info, {"missing_keys",
    "unexpected_keys", "mismatched_keys" [(key, checkpoint shape, model shape)], "error_msgs"}, and logs it in one
    warning. Raises CheckpointError naming every mis-shaped weight (unless `ignore_mismatched_sizes`: then they are
    initialised and reported), or when the checkpoint holds none of the model's encoder."""
    expected = model_state_dict(model)
    tensors = normalise_keys(model, tensors, expected)
    mismatched = [(k, tuple(v.shape), tuple(expected[k].shape))
                  for k, v in tensors.items() if k in expected and tuple(v.shape) != tuple(expected[k].shape)]
    if mismatched and not ignore_mismatched_sizes:
        raise CheckpointError(f"checkpoint does not fit {type(model).__name__}: mis-shaped ({len(mismatched)}), pass "
                              f"ignore_mismatched_sizes=True to initialise them instead:\n  " +
                              "\n  ".join(f"{k}: checkpoint {c}, model {m}" for k, c, m in mismatched))
    loaded = [k for k in expected if k in tensors and k not in {m[0] for m in mismatched}]
    if not any(k.startswith(_encoder_prefix(model)) for k in loaded):
        raise CheckpointError(f"the checkpoint holds none of {type(model).__name__}'s encoder weights (a model of "
                              f"another family?); its keys start: {', '.join(sorted(tensors)[:5]) or 'none'}")
    for key in loaded:
        expected[key].set_value(jnp.asarray(tensors[key], dtype=expected[key].dtype))
    info = {"missing_keys": sorted(k for k in expected if k not in tensors),
            "unexpected_keys": sorted(k for k in tensors if k not in expected),
            "mismatched_keys": mismatched, "error_msgs": []}
    _warn(type(model).__name__, info)
    return info


def _encoder_prefix(model) -> str:
    return "" if model.is_base_model or not model.base_model_prefix else model.base_model_prefix + "."


def _warn(name: str, info: dict) -> None:
    parts = [f"{title} ({len(keys)}): {', '.join(keys)}" for title, keys in (
        ("not in the checkpoint, newly initialised", info["missing_keys"]),
        ("in the checkpoint, not used", info["unexpected_keys"]),
        ("mis-shaped, newly initialised", [f"{k} checkpoint {c} model {m}" for k, c, m in info["mismatched_keys"]]))
        if keys]
    if parts:
        logger.warning("loading %s: %s", name, "; ".join(parts))


def normalise_keys(model, tensors: dict, expected: dict) -> dict:
    """A checkpoint's keys as `model`'s parameters are named: trainer prefixes stripped, old LayerNorm names
    (gamma/beta) renamed, the base-model prefix added or removed, and recomputed buffers and keys the class says to
    ignore (tied copies) dropped."""
    if tensors and all(k.startswith(TRAINER_PREFIX) for k in tensors):      # a Composer / trainer state dict
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
        renamed = {k[len(base_prefix):] if k.startswith(base_prefix) else k: v for k, v in renamed.items()}
    ignored = [re.compile(p) for p in (*RECOMPUTED_BUFFERS, *model.ignored_checkpoint_keys)]
    return {k: v for k, v in renamed.items() if k in expected or not any(p.search(k) for p in ignored)}


def _base_prefix_of(model, tensors: dict) -> str | None:
    """When a bare encoder reads a checkpoint saved with heads, the prefix to strip (e.g. 'bert.')."""
    if not model.is_base_model:
        return None
    prefix = auto.model_class(model.config_class.model_type, "masked-lm").base_model_prefix + "."
    return prefix if any(k.startswith(prefix) for k in tensors) else None


def apply_overrides(config, overrides: dict) -> None:
    """Set config fields (or, for keys the family does not have, `extra` entries) before a model is built;
    `num_labels=n` names the labels LABEL_0 … LABEL_{n−1}, as transformers does."""
    fields = set(config.__dataclass_fields__) - {"extra"}
    for key, value in overrides.items():
        if key == "num_labels":
            set_labels(config, [f"LABEL_{i}" for i in range(value)])
        elif key == "id2label":
            set_labels(config, [value[i] for i in sorted(value, key=int)])
        elif key in fields:
            setattr(config, key, value)
        else:
            config.extra[key] = value


def from_pretrained(name_or_path: str | Path, *, model_class: type | None = None, dtype=jnp.float32,
                    ignore_mismatched_sizes: bool = False, output_loading_info: bool = False, cache_dir=None,
                    local_files_only: bool = False, revision: str | None = None, **config_overrides):
    """Build the model that `config.json` names (or `model_class`) and load its weights; eval mode.

    `name_or_path`: a directory, or a Hub name (`checkpoints/hub.py`: cache_dir, local_files_only, revision).
    `config_overrides` (num_labels=3, id2label={0: "neg", ...}, problem_type=..., any config field) are set on
    the config before the model is built. Returns the model, or (model, loading info) with `output_loading_info`
    (see `load_state_dict`, which also says what is initialised, dropped, or an error)."""
    path = hub.resolve(name_or_path, cache_dir=cache_dir, local_files_only=local_files_only, revision=revision)
    config = read_config(path)
    apply_overrides(config, config_overrides)
    model_class = model_class or auto.model_class_for(config)
    if model_class.config_class is not type(config):
        raise ValueError(f"{model_class.__name__} expects a {model_class.config_class.model_type!r} config, "
                         f"{path} holds a {config.model_type!r} one")
    tensors = read_state_dict(path)
    if hasattr(model_class, "fit_config_to_checkpoint"):     # a layout the weights decide (DeBERTa's MLM head)
        model_class.fit_config_to_checkpoint(config, tensors.keys())
    model = model_class(config, dtype=dtype, rngs=nnx.Rngs(0))
    info = load_state_dict(model, tensors, ignore_mismatched_sizes=ignore_mismatched_sizes)
    model.eval()
    return (model, info) if output_loading_info else model


def save_pretrained(model, path: str | Path) -> None:
    """Write `config.json` (with this class in `architectures`) and `model.safetensors`, float32."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    config = model.config
    config.architectures = [type(model).__name__]
    config.save(path)
    tensors = {k: np.ascontiguousarray(np.asarray(v[...], dtype=np.float32)) for k, v in model_state_dict(model).items()}
    save_safetensors(tensors, path / SAFETENSORS)
