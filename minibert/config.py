"""Model configurations: one dataclass per family, read from and written to Hugging Face `config.json`.

A config holds the hyper-parameters of the architecture and the labels of its task heads, as transformers' does:
`id2label` / `label2id` (LABEL_0, LABEL_1 when config.json names none), `num_labels` (their count) and
`problem_type`, on every family's config. Keys of a `config.json` that the family does not use
(`transformers_version`, ...) are kept in `extra` and written back unchanged, so a Hugging Face directory survives
a round trip through minibert. Older dialects are converted when read (`from_dict`): a bare `num_labels` or
`_num_labels` (transformers 4) becomes LABEL_0 … LABEL_{n−1}, and id2label's string keys (JSON's) become ints.

As in transformers, any config can be created, written and read back; whether it describes a model that can be
built is checked when one is built: each family's bare encoder calls `config.validate()` (field types, then the
family's own rules), which raises TypeError / ValueError naming the field.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from pathlib import Path
from typing import Any, ClassVar

CONFIG_NAME = "config.json"


@dataclasses.dataclass
class PretrainedConfig:
    """Base of every family's config. Subclasses add their fields and a `model_type`."""

    model_type: ClassVar[str] = ""

    architectures: list[str] | None = None
    id2label: dict[int, str] = dataclasses.field(default_factory=lambda: default_labels(DEFAULT_NUM_LABELS))
    label2id: dict[str, int] = dataclasses.field(default_factory=lambda: inverse(default_labels(DEFAULT_NUM_LABELS)))
    problem_type: str | None = None   # "regression", "single_label_classification", "multi_label_classification"
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def num_labels(self) -> int:
        return len(self.id2label)

    @classmethod
    def claims(cls, values: dict[str, Any]) -> bool:
        """Whether a config.json whose `model_type` names another family is really this one's (a dialect)."""
        return False

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> PretrainedConfig:
        values = _labels_from_json(values)
        names = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        known = {k: v for k, v in values.items() if k in names}
        extra = {k: v for k, v in values.items() if k not in names and k != "model_type"}
        return cls(**known, extra=extra)

    def type_errors(self) -> list[str]:
        """One line per field whose value is not of its annotated type (an int where a float is declared is fine)."""
        hints = typing.get_type_hints(type(self))
        return [f"{f.name} must be {_type_name(hints[f.name])}, got {getattr(self, f.name)!r}"
                for f in dataclasses.fields(self) if not _matches(getattr(self, f.name), hints[f.name])]

    def validate(self) -> None:
        """Raise TypeError for a field of the wrong type; families add their own rules (ValueError)."""
        errors = self.type_errors()
        if errors:
            raise TypeError(f"{type(self).__name__}: " + "; ".join(errors))

    @property
    def longest_input(self) -> int | None:
        """The most tokens one input may hold: `max_position_embeddings` where the family has a position table
        (less RoBERTa's offset, models/roberta.py), None where it has none (ALiBi, RoPE without a table)."""
        return getattr(self, "max_position_embeddings", None)

    def _settable_fields(self) -> set[str]:
        """The fields a config override may set (the label maps and `extra` are not settable by name)."""
        return {f.name for f in dataclasses.fields(self)} - {"extra", "id2label", "label2id"}

    def update_from_string(self, update_str: str) -> None:
        """Set fields from "name=value,name=value" (transformers' `PretrainedConfig.update_from_string`, which
        `run_mlm.py --config_overrides` uses): each value is read as its field's type (int, float, `true`/`false`,
        a string; `none` for a field that may be None). Raises ValueError naming an unknown field, an item without
        `=`, or a value its field's type cannot hold."""
        hints = typing.get_type_hints(type(self))
        names = self._settable_fields()
        for item in filter(None, (part.strip() for part in update_str.split(","))):
            name, equals, text = (part.strip() for part in item.partition("="))
            if not equals:
                raise ValueError(f"config override {item!r} is not name=value")
            if name not in names:
                raise ValueError(f"{type(self).__name__} has no field {name!r}; its fields: {', '.join(sorted(names))}")
            setattr(self, name, _parse(text, hints[name], name))

    def update_from_file(self, path: str | Path) -> None:
        """Set fields from a JSON object file, {"positions": "rope", ...} (a saved config.json works; its
        `model_type`, when there, must be this config's). Raises FileNotFoundError, or ValueError naming the file and
        its invalid JSON's line, a wrong model_type, an unknown field or a value of the wrong type."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"--config {path}: no such file")
        try:
            values = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}: invalid JSON at line {error.lineno}: {error.msg}") from None
        if not isinstance(values, dict):
            raise ValueError(f"{path}: expected a JSON object of config fields, got {type(values).__name__}")
        model_type = values.pop("model_type", self.model_type)
        if model_type != self.model_type:
            raise ValueError(f"{path}: model_type {model_type!r}, but this run trains a {self.model_type!r} model")
        names = self._settable_fields()
        unknown = sorted(set(values) - names)
        if unknown:
            raise ValueError(f"{path}: {type(self).__name__} has no field {', '.join(map(repr, unknown))}; its "
                             f"fields: {', '.join(sorted(names))}")
        for name, value in values.items():
            setattr(self, name, value)
        errors = self.type_errors()
        if errors:
            raise ValueError(f"{path}: " + "; ".join(errors))

    def to_dict(self) -> dict[str, Any]:
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                  if f.name not in ("extra", "id2label", "label2id", "problem_type")}
        return {**self.extra, **values, **_labels_to_json(self), "model_type": self.model_type}

    @classmethod
    def from_json_file(cls, path: str | Path) -> PretrainedConfig:
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))

    def save(self, directory: str | Path) -> None:
        path = Path(directory) / CONFIG_NAME
        path.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n", encoding="utf-8")


# ---- labels of the task heads, as transformers keeps them ---------------------------------------------------

DEFAULT_NUM_LABELS = 2  # transformers' default when a config names no labels


def default_labels(n: int) -> dict[int, str]:
    """{i: "LABEL_i"} for n classes: transformers' names when none are given."""
    return {i: f"LABEL_{i}" for i in range(n)}


def inverse(id2label: dict[int, str]) -> dict[str, int]:
    """label2id of an id2label."""
    return {name: i for i, name in id2label.items()}


def _labels_from_json(values: dict[str, Any]) -> dict[str, Any]:
    """config.json's labels as the config fields hold them: `id2label` keyed by int (JSON keys are strings); a bare
    `num_labels` or transformers 4's `_num_labels` (without `id2label`) as LABEL_0 … LABEL_{n−1}; `label2id` the
    inverse of `id2label` when absent; null labels as none given (transformers/configuration_utils.py,
    `PreTrainedConfig.__post_init__`)."""
    count = values.get("num_labels", values.get("_num_labels"))
    names, label2id = values.get("id2label"), values.get("label2id")
    values = {k: v for k, v in values.items() if k not in ("num_labels", "_num_labels", "id2label", "label2id")}
    if names is None and count is None:
        return values
    names = default_labels(int(count)) if names is None else {int(i): name for i, name in names.items()}
    label2id = inverse(names) if label2id is None else label2id
    return {**values, "id2label": names, "label2id": label2id}


def _labels_to_json(config) -> dict[str, Any]:
    """The labels as transformers writes them: `id2label` keyed by strings, and, as its `to_diff_dict`, nothing at
    the defaults (two unnamed labels, no problem_type)."""
    default = default_labels(DEFAULT_NUM_LABELS)
    labels = {}
    if config.id2label != default or config.label2id != inverse(default):
        labels = {"id2label": {str(i): name for i, name in config.id2label.items()}, "label2id": config.label2id}
    if config.problem_type is not None:
        labels["problem_type"] = config.problem_type
    return labels


def id2label(config) -> dict[int, str]:
    """{class id: name}: `config.id2label`."""
    return config.id2label


def num_labels(config) -> int:
    return config.num_labels


def set_labels(config, names: list[str]) -> None:
    """Name the classes, in id order: `id2label` and `label2id` (Hugging Face's keys)."""
    if len(set(names)) != len(names) or not names:
        raise ValueError(f"label names must be unique and non-empty, got {names}")
    config.id2label = dict(enumerate(names))
    config.label2id = inverse(config.id2label)


def _matches(value, hint) -> bool:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return any(_matches(value, option) for option in typing.get_args(hint))
    if hint is Any:
        return True
    if hint is type(None):
        return value is None
    kind = typing.get_origin(hint) or hint
    if kind in (int, float):
        return isinstance(value, int if kind is int else (int, float)) and not isinstance(value, bool)
    return isinstance(value, kind)


def _parse(text: str, hint, name: str):
    """`text` as a value of the type `hint` (int, float, bool, str, or any of them | None)."""
    options = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
    if type(None) in options and text.lower() in ("none", "null"):
        return None
    for kind in (bool, int, float, str):
        if kind in options or (kind is str and Any in options):
            try:
                if kind is bool:
                    return {"true": True, "false": False}[text.lower()]
                return kind(text)
            except (KeyError, ValueError):
                continue
    raise ValueError(f"config override {name}={text!r}: {name} must be {_type_name(hint)}")


def _type_name(hint) -> str:
    return getattr(hint, "__name__", None) or str(hint)


@dataclasses.dataclass
class BertConfig(PretrainedConfig):
    """BERT (Devlin et al., 2019, §3): defaults are BERT-base, uncased (L=12, H=768, A=12). ELECTRA's and
    ConvBERT's configs extend it (the same fields, their own defaults)."""

    model_type: ClassVar[str] = "bert"

    vocab_size: int = 30522
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    initializer_range: float = 0.02
    layer_norm_eps: float = 1e-12
    pad_token_id: int = 0
    tie_word_embeddings: bool = True
    classifier_dropout: float | None = None   # the task heads' dropout; None: hidden_dropout_prob

    def validate(self) -> None:
        super().validate()
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"hidden_size {self.hidden_size} is not a multiple of num_attention_heads {self.num_attention_heads}"
            )
        family = type(self).__name__.removesuffix("Config")
        position_type = self.extra.get("position_embedding_type", "absolute")
        if position_type != "absolute":
            raise ValueError(f"position_embedding_type {position_type!r} is not supported: minibert's {family} uses "
                             f"absolute positions")
        if self.extra.get("is_decoder") or self.extra.get("add_cross_attention"):
            raise ValueError(f"{family} as a decoder (is_decoder / add_cross_attention) is not supported: minibert "
                             f"builds encoders")
