"""Which module, config class and model class a `config.json` names: one explicit table, as `transformers`' auto
module has, instead of classes registering themselves when their module happens to be imported.

    model_type     module                        tasks
    bert           minibert.models.bert          base, masked-lm, pretraining, next-sentence-prediction + fine-tuning
    mobilebert     minibert.models.mobilebert    base, masked-lm, pretraining, next-sentence-prediction + fine-tuning
    convbert       minibert.models.convbert      base, masked-lm + the fine-tuning tasks
    electra        minibert.models.electra       base, masked-lm (generator), pretraining (discriminator) + fine-tuning
    roberta        minibert.models.roberta       base, masked-lm + the fine-tuning tasks
    modernbert     minibert.models.modernbert    base, masked-lm + the fine-tuning tasks
    mosaic_bert    minibert.models.mosaicbert    base, masked-lm
    distilbert     minibert.models.distilbert    base, masked-lm + the fine-tuning tasks
    albert         minibert.models.albert        base, masked-lm, pretraining (MLM + SOP) + fine-tuning
    deberta-v2     minibert.models.deberta_v2    base, masked-lm, pretraining (the v3 RTD discriminator) + fine-tuning
    flex           minibert.models.flex          base, masked-lm, pretraining (MLM + NSP) + fine-tuning (composable)

The fine-tuning heads (sequence-classification, token-classification, question-answering, multiple-choice) live in
`minibert.models.finetuning`. Modules are imported when first asked for (reading a config imports every
family's, since any family may claim a dialect).

    config = AutoConfig.from_pretrained("path/or/hub-name")
    model = AutoModelForSequenceClassification.from_pretrained("path", num_labels=3)
    model = AutoModelForMaskedLM.from_config(config)

`from_pretrained` takes the keyword arguments of `minibert.checkpoints.hf.from_pretrained`; `read_config` reads a
directory's config.json into its family's config class.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, ClassVar

import jax.numpy as jnp
from flax import nnx

from minibert.checkpoints import hub
from minibert.checkpoints.files import CONFIG_NAME, CheckpointError, read_config_dict

MODULES = {
    "bert": "minibert.models.bert",
    "mobilebert": "minibert.models.mobilebert",
    "convbert": "minibert.models.convbert",
    "electra": "minibert.models.electra",
    "roberta": "minibert.models.roberta",
    "modernbert": "minibert.models.modernbert",
    "mosaic_bert": "minibert.models.mosaicbert",
    "distilbert": "minibert.models.distilbert",
    "albert": "minibert.models.albert",
    "deberta-v2": "minibert.models.deberta_v2",
    "flex": "minibert.models.flex",
}
CONFIG_CLASSES = {"bert": "BertConfig", "mobilebert": "MobileBertConfig", "convbert": "ConvBertConfig",
                  "electra": "ElectraConfig", "roberta": "RobertaConfig", "modernbert": "ModernBertConfig",
                  "mosaic_bert": "MosaicBertConfig", "distilbert": "DistilBertConfig",
                  "albert": "AlbertConfig",
                  "deberta-v2": "DebertaV2Config", "flex": "FlexConfig"}
FINETUNING_MODULE = "minibert.models.finetuning"
FINETUNING_TASKS = {"sequence-classification": "ForSequenceClassification",    # task → class name suffix
                    "token-classification": "ForTokenClassification",
                    "question-answering": "ForQuestionAnswering", "multiple-choice": "ForMultipleChoice"}


def _finetuning(prefix: str) -> dict[str, str]:
    """task → class name of a family's fine-tuning heads, e.g. "sequence-classification" → BertForSequenceClassification."""
    return {task: prefix + suffix for task, suffix in FINETUNING_TASKS.items()}


MODEL_CLASSES: dict[str, dict[str, str]] = {   # model_type → task → class name
    "bert": {"base": "BertModel", "masked-lm": "BertForMaskedLM", "pretraining": "BertForPreTraining",
             "next-sentence-prediction": "BertForNextSentencePrediction", **_finetuning("Bert")},
    "mobilebert": {"base": "MobileBertModel", "masked-lm": "MobileBertForMaskedLM",
                   "pretraining": "MobileBertForPreTraining",
                   "next-sentence-prediction": "MobileBertForNextSentencePrediction", **_finetuning("MobileBert")},
    "convbert": {"base": "ConvBertModel", "masked-lm": "ConvBertForMaskedLM", **_finetuning("ConvBert")},
    "electra": {"base": "ElectraModel", "masked-lm": "ElectraForMaskedLM", "pretraining": "ElectraForPreTraining",
                **_finetuning("Electra")},
    "roberta": {"base": "RobertaModel", "masked-lm": "RobertaForMaskedLM", **_finetuning("Roberta")},
    "modernbert": {"base": "ModernBertModel", "masked-lm": "ModernBertForMaskedLM", **_finetuning("ModernBert")},
    "mosaic_bert": {"base": "MosaicBertModel", "masked-lm": "MosaicBertForMaskedLM"},
    "distilbert": {"base": "DistilBertModel", "masked-lm": "DistilBertForMaskedLM", **_finetuning("DistilBert")},
    "albert": {"base": "AlbertModel", "masked-lm": "AlbertForMaskedLM", "pretraining": "AlbertForPreTraining",
               **_finetuning("Albert")},
    "deberta-v2": {"base": "DebertaV2Model", "masked-lm": "DebertaV2ForMaskedLM",
                   "pretraining": "DebertaV2ForReplacedTokenDetection", **_finetuning("DebertaV2")},
    "flex": {"base": "FlexModel", "masked-lm": "FlexForMaskedLM", "pretraining": "FlexForPreTraining",
             "replaced-token-detection": "FlexForReplacedTokenDetection", **_finetuning("Flex")},
}


def config_classes() -> dict[str, type]:
    """model_type → config class, every family (their modules imported)."""
    return {t: getattr(importlib.import_module(MODULES[t]), name) for t, name in CONFIG_CLASSES.items()}


def config_class_for(values: dict[str, Any]) -> type:
    """The config class of a `config.json`'s values: a family that `claims` them (a dialect, e.g. MosaicBERT's
    `"model_type": "bert"`), else the one its `model_type` names. Raises ValueError for an unknown model_type."""
    classes = config_classes()
    dialect = [c for c in classes.values() if c.claims(values)]
    if dialect:
        return dialect[0]
    model_type = values.get("model_type")
    if model_type not in classes:
        raise ValueError(f"unknown model_type {model_type!r} in config.json; minibert knows: {', '.join(sorted(classes))}")
    return classes[model_type]


def model_class(model_type: str, task: str = "base") -> type:
    """The class of a family for a task ("base", "masked-lm", "pretraining", "sequence-classification", ...).
    Raises ValueError when the family has no such class."""
    if model_type not in MODEL_CLASSES:
        raise ValueError(f"unknown model_type {model_type!r}; minibert knows: {', '.join(sorted(MODEL_CLASSES))}")
    name = MODEL_CLASSES[model_type].get(task)
    if name is None:
        raise ValueError(f"the {model_type!r} family has no {task} model in minibert; it has: "
                         f"{', '.join(MODEL_CLASSES[model_type])}")
    return getattr(importlib.import_module(FINETUNING_MODULE if task in FINETUNING_TASKS else MODULES[model_type]), name)


def model_class_by_name(name: str) -> type:
    """The class an `architectures` entry names (e.g. "BertForMaskedLM"). Raises ValueError for an unknown one."""
    for model_type, tasks in MODEL_CLASSES.items():
        for task, class_name in tasks.items():
            if class_name == name:
                return model_class(model_type, task)
    known = sorted(n for tasks in MODEL_CLASSES.values() for n in tasks.values())
    raise ValueError(f"unknown architecture {name!r} in config.json; minibert knows: {', '.join(known)}")


def model_class_for(config) -> type:
    """The class a config names: its first `architectures` entry, else its family's bare encoder."""
    return model_class_by_name(config.architectures[0]) if config.architectures else model_class(config.model_type)


def all_model_classes() -> dict[str, type]:
    """Class name → class, every model of every family."""
    return {name: model_class(t, task) for t, tasks in MODEL_CLASSES.items() for task, name in tasks.items()}


def read_config(path: str | Path):
    """The config of a model directory, as the family's config class (int8's `quantization_config` dropped: the
    weights are dequantized on load). Raises FileNotFoundError without config.json, CheckpointError naming it when
    it is not a JSON object or has fields of the wrong type, ValueError for an unknown model_type."""
    path = Path(path)
    values = read_config_dict(path)
    values.pop("quantization_config", None)
    config = config_class_for(values).from_dict(values)
    errors = config.type_errors()
    if errors:
        raise CheckpointError(f"{path / CONFIG_NAME}: " + "; ".join(errors))
    return config


class AutoConfig:
    """The config class a `config.json` (or a model_type) names."""

    @staticmethod
    def for_model(model_type: str, **values):
        return model_class(model_type).config_class(**values)

    @staticmethod
    def from_pretrained(name_or_path, **kwargs):
        """The config of a model directory or Hub name (kwargs: cache_dir, local_files_only, revision)."""
        return read_config(hub.resolve(name_or_path, **kwargs))


class _AutoModel:
    """The class of a family for `task`, picked from the config's model_type (not from its `architectures`)."""

    task: ClassVar[str]

    @classmethod
    def from_config(cls, config, *, dtype=jnp.float32, rngs: nnx.Rngs | None = None):
        """A model with fresh weights (train mode, as a newly built model is)."""
        return model_class(config.model_type, cls.task)(config, dtype=dtype, rngs=rngs or nnx.Rngs(0))

    @classmethod
    def from_pretrained(cls, name_or_path, **kwargs):
        """Load a directory or Hub name into the family's class for this task (what is missing initialised,
        what is unused dropped: see `minibert.checkpoints.hf.from_pretrained`)."""
        path = hub.resolve(name_or_path, **{k: kwargs.pop(k) for k in hub.OPTIONS if k in kwargs})
        return model_class(read_config(path).model_type, cls.task).from_pretrained(path, **kwargs)


class AutoModel(_AutoModel):
    task = "base"


class AutoModelForMaskedLM(_AutoModel):
    task = "masked-lm"


class AutoModelForPreTraining(_AutoModel):
    task = "pretraining"


class AutoModelForNextSentencePrediction(_AutoModel):
    task = "next-sentence-prediction"


class AutoModelForSequenceClassification(_AutoModel):
    task = "sequence-classification"


class AutoModelForTokenClassification(_AutoModel):
    task = "token-classification"


class AutoModelForQuestionAnswering(_AutoModel):
    task = "question-answering"


class AutoModelForMultipleChoice(_AutoModel):
    task = "multiple-choice"
