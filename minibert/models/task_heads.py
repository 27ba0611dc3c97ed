"""Task heads on a family's encoder: how a head sits on the encoder, and the ways it reads the encoder's output.

Devlin et al. (2019), §4: a sentence-level task reads one vector per sequence (BERT: the pooled [CLS]) and
adds one linear layer; a token-level task a linear layer on every token's state. The families differ in how they
get that vector. A `TaskModel` holds the family's bare encoder (its `backbone`, under `base_model_prefix`) and
one head, which a `Readout` builds and reads, with Hugging Face's attribute names so that parameter paths are
checkpoint keys:
- `Classifier` (BERT, MobileBERT; every family's tokens): classifier(Dropout(x)), x the pooler output or each
  token's state; `QAOutputs`: qa_outputs(h_t), the start and end logits of each token (§4.2);
- `Head` (ELECTRA, ConvBERT, RoBERTa): the two-layer `ClassificationHead` on h_[CLS];
- `Summary` (ELECTRA and ConvBERT multiple choice, from XLM): a `SequenceSummary`, then the classifier;
- `pool` (ModernBERT, Warner et al. 2024, §2.1): h_[CLS] or the mean over the real tokens (its readout is in
  models/finetuning.py, beside its prediction head);
- `SeqRelationship`: next sentence prediction (§3.1, task #2) on the pooler output.
Shapes: hidden (batch, seq, hidden) → (batch, hidden), (batch, outputs) or (batch, seq, outputs).
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
from flax import nnx

from minibert import losses
from minibert.models.base import PreTrainedModel
from minibert.models.heads import NextSentencePredictionHead
from minibert.models.outputs import ModelOutput
from minibert.nn.activations import activation
from minibert.nn.linear import Linear

SUMMARY_TYPES = ("first", "last", "mean", "cls_index")
POOLINGS = ("cls", "mean")


# ---- the pieces ----------------------------------------------------------------------------------------------

class ClassificationHead(nnx.Module):
    """logits = out_proj(Dropout(act(dense(Dropout(h_[CLS]))))): (batch, seq, hidden) → (batch, num_labels)."""

    def __init__(self, hidden_size: int, num_labels: int, act: str, *, dropout: float, init_std: float = 0.02,
                 dtype=jnp.float32, rngs: nnx.Rngs):
        self.dense = Linear(hidden_size, hidden_size, init_std=init_std, dtype=dtype, rngs=rngs)
        self.act = activation(act)
        self.dropout = nnx.Dropout(dropout, rngs=rngs)
        self.out_proj = Linear(hidden_size, num_labels, init_std=init_std, dtype=dtype, rngs=rngs)

    def __call__(self, hidden: jax.Array) -> jax.Array:
        x = self.dropout(hidden[:, 0])
        return self.out_proj(self.dropout(self.act(self.dense(x))))


class SequenceSummary(nnx.Module):
    """Dropout_last(act(summary(Dropout_first(pick(h))))): (batch, seq, hidden) → (batch, hidden).

    `pick` is "first" (h_0), "last" (h_{seq−1}, also "cls_index" without an index — a padding position when
    the row is padded, as in the reference) or "mean" (over every position, padding included). `summary`
    is Linear(hidden, hidden) when `use_proj`, else nothing; `act` is a config activation name or None."""

    def __init__(self, hidden_size: int, *, summary_type: str, use_proj: bool, act: str | None, first_dropout: float,
                 last_dropout: float, init_std: float = 0.02, dtype=jnp.float32, rngs: nnx.Rngs):
        if summary_type not in SUMMARY_TYPES:
            raise ValueError(f"summary_type {summary_type!r} is not supported; choose from {SUMMARY_TYPES}")
        self.summary_type = summary_type
        self.summary = Linear(hidden_size, hidden_size, init_std=init_std, dtype=dtype, rngs=rngs) if use_proj else None
        self.act = activation(act) if act else None
        self.first_dropout = nnx.Dropout(first_dropout, rngs=rngs)
        self.last_dropout = nnx.Dropout(last_dropout, rngs=rngs)

    def __call__(self, hidden: jax.Array) -> jax.Array:
        if self.summary_type == "first":
            x = hidden[:, 0]
        elif self.summary_type == "mean":
            x = hidden.mean(axis=1)
        else:
            x = hidden[:, -1]
        x = self.first_dropout(x)
        if self.summary is not None:
            x = self.summary(x)
        if self.act is not None:
            x = self.act(x)
        return self.last_dropout(x)


def pool(hidden: jax.Array, attention_mask: jax.Array, how: str, *, first_real: bool = False) -> jax.Array:
    """(batch, seq, hidden) → (batch, hidden): "cls" takes position 0 (or, with `first_real`, each row's first
    real token, for left padding), "mean" averages the real tokens: Σ_t m_t h_t / Σ_t m_t."""
    if how not in POOLINGS:
        raise ValueError(f"classifier_pooling {how!r} is not one of {POOLINGS}")
    real = attention_mask > 0                                                   # (batch, seq)
    if how == "cls":
        index = jnp.argmax(real, axis=-1) if first_real else jnp.zeros(hidden.shape[0], jnp.int32)
        return jnp.take_along_axis(hidden, index[:, None, None], axis=1)[:, 0]
    weights = real.astype(hidden.dtype)[..., None]
    return (hidden * weights).sum(axis=1) / weights.sum(axis=1)


def classifier_dropout(config) -> float:
    """`classifier_dropout`, falling back to the encoder's hidden dropout, as Hugging Face does."""
    return config.hidden_dropout_prob if config.classifier_dropout is None else config.classifier_dropout


def classifier(config, outputs: int, *, dtype, rngs: nnx.Rngs) -> Linear:
    """Linear(hidden → outputs), initialised as the encoder's layers."""
    return Linear(config.hidden_size, outputs, init_std=config.initializer_range, dtype=dtype, rngs=rngs)


# ---- the readouts: what a head adds to the model, and the logits it reads --------------------------------------

class Readout:
    """How a task head reads the encoder. `build` adds the head's modules to the model (Hugging Face's names);
    calling it gives the logits from the encoder's output. `pooler`: it reads `pooler_output`, so the encoder is
    built with its pooler."""

    pooler: ClassVar[bool] = False

    def build(self, model, config, outputs: int, *, dtype, rngs: nnx.Rngs) -> None:
        raise NotImplementedError

    def __call__(self, model, out: ModelOutput, attention_mask: jax.Array) -> jax.Array:
        raise NotImplementedError


@dataclasses.dataclass(frozen=True)
class Classifier(Readout):
    """`classifier`(`dropout`(x)): x the pooler output (BERT §4.1, tanh(W h_[CLS] + b)) → (batch, outputs), or
    each token's state (§5.3) → (batch, seq, outputs). Dropout `classifier_dropout` (else hidden_dropout_prob),
    or the encoder's hidden_dropout_prob with `hidden_dropout` (RoBERTa's multiple choice, as the reference)."""

    reads: str                       # "pooler_output" or "last_hidden_state"
    hidden_dropout: bool = False

    @property
    def pooler(self) -> bool:
        return self.reads == "pooler_output"

    def build(self, model, config, outputs, *, dtype, rngs):
        rate = config.hidden_dropout_prob if self.hidden_dropout else classifier_dropout(config)
        model.dropout = nnx.Dropout(rate, rngs=rngs)
        model.classifier = classifier(config, outputs, dtype=dtype, rngs=rngs)

    def __call__(self, model, out, attention_mask):
        return model.classifier(model.dropout(getattr(out, self.reads)))


@dataclasses.dataclass(frozen=True)
class QAOutputs(Readout):
    """[start, end]_t = `qa_outputs`(h_t) (§4.2: a start vector S and an end vector E dotted with every token):
    (batch, seq, 2). `dropout`: the config field of a dropout on h first (DistilBERT's `qa_dropout`), if any."""

    dropout: str | None = None

    def build(self, model, config, outputs, *, dtype, rngs):
        if self.dropout:
            model.dropout = nnx.Dropout(getattr(config, self.dropout), rngs=rngs)
        model.qa_outputs = classifier(config, outputs, dtype=dtype, rngs=rngs)

    def __call__(self, model, out, attention_mask):
        h = out.last_hidden_state
        return model.qa_outputs(model.dropout(h) if self.dropout else h)


@dataclasses.dataclass(frozen=True)
class Head(Readout):
    """`classifier` = ClassificationHead(h): a hidden layer on h_[CLS] with activation `act` (None: the config's
    `hidden_act`). (batch, outputs)."""

    act: str | None = None

    def build(self, model, config, outputs, *, dtype, rngs):
        model.classifier = ClassificationHead(config.hidden_size, outputs, self.act or config.hidden_act,
                                              dropout=classifier_dropout(config), init_std=config.initializer_range,
                                              dtype=dtype, rngs=rngs)

    def __call__(self, model, out, attention_mask):
        return model.classifier(out.last_hidden_state)


@dataclasses.dataclass(frozen=True)
class Summary(Readout):
    """`classifier`(`sequence_summary`(h)), the summary configured by config.json's `summary_*` keys, else the
    family's `defaults` (summary_type, summary_use_proj, summary_activation, summary_first_dropout,
    summary_last_dropout). (batch, outputs)."""

    defaults: dict[str, Any]

    def build(self, model, config, outputs, *, dtype, rngs):
        get = lambda key: config.extra.get(key, self.defaults[key])
        if config.extra.get("summary_proj_to_labels"):
            raise ValueError("summary_proj_to_labels is not supported: the multiple-choice classifier reads "
                             "a hidden_size-wide summary")
        model.sequence_summary = SequenceSummary(config.hidden_size, summary_type=get("summary_type"),
                                                 use_proj=get("summary_use_proj"), act=get("summary_activation"),
                                                 first_dropout=get("summary_first_dropout"),
                                                 last_dropout=get("summary_last_dropout"),
                                                 init_std=config.initializer_range, dtype=dtype, rngs=rngs)
        model.classifier = classifier(config, outputs, dtype=dtype, rngs=rngs)

    def __call__(self, model, out, attention_mask):
        return model.classifier(model.sequence_summary(out.last_hidden_state))


@dataclasses.dataclass(frozen=True)
class SeqRelationship(Readout):
    """`cls.seq_relationship`(pooler_output): the NSP classifier alone (HF `BertOnlyNSPHead`), (batch, 2)."""

    pooler = True

    def build(self, model, config, outputs, *, dtype, rngs):
        model.cls = NextSentencePredictionHead(config.hidden_size, init_std=config.initializer_range, dtype=dtype,
                                               rngs=rngs)

    def __call__(self, model, out, attention_mask):
        return model.cls(out.pooler_output)


# ---- a head on an encoder ------------------------------------------------------------------------------------

class TaskModel(PreTrainedModel):
    """The family's bare encoder (`backbone`, under `base_model_prefix`) and one head, built and read by the class's
    `readout` with `outputs(config)` outputs. The encoder has a pooler only where the head reads it."""

    backbone: ClassVar[type]
    readout: ClassVar[Readout]

    def __init__(self, config, *, dtype=jnp.float32, rngs: nnx.Rngs | None = None):
        rngs = rngs or nnx.Rngs(0)
        self.config = config
        has_pooler = "add_pooling_layer" in inspect.signature(self.backbone.__init__).parameters
        pooling = {"add_pooling_layer": self.readout.pooler} if has_pooler else {}
        setattr(self, self.base_model_prefix, self.backbone(config, **pooling, dtype=dtype, rngs=rngs))
        self.readout.build(self, config, self.outputs(config), dtype=dtype, rngs=rngs)

    @staticmethod
    def outputs(config) -> int:
        raise NotImplementedError

    def check_inputs(self, input_ids, attention_mask, token_type_ids, **packing) -> None:
        """The encoder's own checks (RoBERTa's position offset, ModernBERT's token types, ...)."""
        self.base_model.check_inputs(input_ids, attention_mask, token_type_ids, **packing)

    def encode(self, input_ids, attention_mask, token_type_ids, output_hidden_states: bool,
               inputs_embeds=None) -> ModelOutput:
        return self.base_model.forward(input_ids, attention_mask, token_type_ids,
                                       output_hidden_states=output_hidden_states, inputs_embeds=inputs_embeds)


class NextSentencePrediction(TaskModel):
    """The NSP head alone (Devlin et al. 2019, §3.1, task #2): logits (batch, 2) on the pooled [CLS], class 0 =
    "B follows A"; loss = cross-entropy given `labels` (batch,). A family sets `config_class`,
    `base_model_prefix` and `backbone`."""

    readout = SeqRelationship()

    @staticmethod
    def outputs(config) -> int:
        return 2

    def forward(self, input_ids, attention_mask, token_type_ids, *, output_hidden_states=False, labels=None,
                inputs_embeds=None):
        out = self.encode(input_ids, attention_mask, token_type_ids, output_hidden_states, inputs_embeds)
        logits = self.readout(self, out, attention_mask)
        return out.replace(logits=logits, loss=None if labels is None else losses.next_sentence_loss(logits, labels))
