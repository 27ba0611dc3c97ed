"""Task heads for fine-tuning (Devlin et al., 2019, §4; Figure 4), for every family `transformers` has them for.

    sequence classification  (§4.1, GLUE)      logits (batch, num_labels)   labels (batch,)
    token classification     (§5.3, NER)       logits (batch, seq, num_labels)   labels (batch, seq), -100 ignored
    question answering       (§4.2, SQuAD)     start_logits, end_logits (batch, seq)   start/end_positions (batch,)
    multiple choice          (§4.4, SWAG)      inputs (batch, choices, seq) → logits (batch, choices)   labels (batch,)

A family's four heads are one declaration (`task_heads`, at the bottom): its bare encoder, the attribute that holds
it (the checkpoint keys' first part), and how each head reads it (models/task_heads.py): BERT and MobileBERT the
pooler's tanh(W h_[CLS]); ELECTRA and ConvBERT a two-layer head on h_[CLS] for classification and a
`SequenceSummary` for multiple choice; RoBERTa the two-layer head (tanh) on h_<s> for classification, the pooler for
multiple choice; ModernBERT its prediction head on the [CLS] or mean-pooled state (`classifier_pooling`); ALBERT
the pooler as BERT; DistilBERT a hidden layer (`pre_classifier`, ReLU) on h_[CLS]; DeBERTa its context pooler;
Flex the pooler as BERT.
Class and attribute names are Hugging Face's (`bert.pooler.dense.weight`, `classifier.out_proj.weight`,
`qa_outputs.weight`, `head.norm.weight`), so checkpoints load through the generic loader and `from_pretrained`
picks the class from `architectures`.

Labels live where Hugging Face keeps them, in the config (minibert/config.py): `id2label` ({0: "NEGATIVE", ...}),
`label2id`, `num_labels` (their count, 2 when config.json names none) and `problem_type`.
"""

from __future__ import annotations

import dataclasses
import types

import jax
import numpy as np
from flax import nnx, struct

from minibert.config import id2label, num_labels, set_labels  # noqa: F401  (this module's API)
from minibert.losses import cross_entropy
from minibert.models.albert import AlbertModel
from minibert.models.bert import BertModel
from minibert.models.convbert import ConvBertModel
from minibert.models.deberta_v2 import ContextPooler, DebertaV2Model
from minibert.models.distilbert import DistilBertModel
from minibert.models.electra import ElectraModel
from minibert.models.flex import FlexModel
from minibert.models.mobilebert import MobileBertModel
from minibert.models.modernbert import ModernBertModel, ModernBertPredictionHead
from minibert.models.outputs import ModelOutput
from minibert.models.roberta import RobertaModel
from minibert.models.task_heads import (Classifier, Head, QAOutputs, Readout, Summary, TaskModel, classifier,
                                        classifier_dropout, pool)
from minibert.models.task_losses import sequence_classification_loss, span_loss
from minibert.nn.linear import Linear


@struct.dataclass
class QuestionAnsweringOutput(ModelOutput):
    start_logits: jax.Array | None = None        # (batch, seq)
    end_logits: jax.Array | None = None          # (batch, seq)


# ---- the tasks -----------------------------------------------------------------------------------------------

class _SequenceClassification(TaskModel):
    """logits (batch, num_labels) from the sequence vector; the loss by `problem_type` (models/task_losses.py)."""

    @staticmethod
    def outputs(config) -> int:
        return config.num_labels

    def forward(self, input_ids, attention_mask, token_type_ids, *, output_hidden_states=False, labels=None,
                inputs_embeds=None):
        out = self.encode(input_ids, attention_mask, token_type_ids, output_hidden_states, inputs_embeds)
        logits = self.readout(self, out, attention_mask)
        loss = None if labels is None else sequence_classification_loss(logits, labels, self.config.problem_type)
        return out.replace(logits=logits, loss=loss)


class _TokenClassification(TaskModel):
    """logits (batch, seq, num_labels), one row per token; cross-entropy over the labelled tokens."""

    @staticmethod
    def outputs(config) -> int:
        return config.num_labels

    def forward(self, input_ids, attention_mask, token_type_ids, *, output_hidden_states=False, labels=None,
                inputs_embeds=None):
        out = self.encode(input_ids, attention_mask, token_type_ids, output_hidden_states, inputs_embeds)
        logits = self.readout(self, out, attention_mask)
        return out.replace(logits=logits, loss=None if labels is None else cross_entropy(logits, labels))


class _QuestionAnswering(TaskModel):
    """start_logits, end_logits (batch, seq): the two outputs of each token (§4.2); the loss averages the start's and
    the end's cross-entropy over the sequence."""

    @staticmethod
    def outputs(config) -> int:
        if config.num_labels != 2:
            raise ValueError(f"question answering predicts a start and an end: num_labels must be 2, "
                             f"got {config.num_labels}")
        return 2

    def forward(self, input_ids, attention_mask, token_type_ids, *, output_hidden_states=False, start_positions=None,
                end_positions=None, inputs_embeds=None):
        out = self.encode(input_ids, attention_mask, token_type_ids, output_hidden_states, inputs_embeds)
        logits = self.readout(self, out, attention_mask)                          # (batch, seq, 2)
        start, end = logits[..., 0], logits[..., 1]
        loss = None
        if start_positions is not None and end_positions is not None:
            loss = span_loss(start, end, start_positions, end_positions)
        return QuestionAnsweringOutput(last_hidden_state=out.last_hidden_state, hidden_states=out.hidden_states,
                                       attentions=out.attentions, start_logits=start, end_logits=end, loss=loss)


class _MultipleChoice(TaskModel):
    """Each (context, choice) row is scored alone, score = the readout's one output on that row, and the scores of
    one example's choices are the logits (§4.4): (batch, choices, seq) → (batch, choices)."""

    @staticmethod
    def outputs(config) -> int:
        return 1

    def check_inputs(self, input_ids: np.ndarray, attention_mask: np.ndarray, token_type_ids: np.ndarray) -> None:
        if input_ids.ndim != 3:
            raise ValueError(f"multiple choice takes input_ids of shape (batch, choices, seq), got {input_ids.shape}")
        flat = lambda a: a.reshape(-1, a.shape[-1])
        super().check_inputs(flat(input_ids), flat(attention_mask), flat(token_type_ids))

    def forward(self, input_ids, attention_mask, token_type_ids, *, output_hidden_states=False, labels=None,
                inputs_embeds=None):
        batch, choices, seq = attention_mask.shape
        flat = lambda a: None if a is None else a.reshape(batch * choices, seq, *a.shape[3:])  # rows: (context, choice)
        out = self.encode(flat(input_ids), flat(attention_mask), flat(token_type_ids), output_hidden_states,
                          flat(inputs_embeds))
        logits = self.readout(self, out, flat(attention_mask))[..., 0].reshape(batch, choices)
        return out.replace(logits=logits, loss=None if labels is None else cross_entropy(logits, labels))


TASKS = {"ForSequenceClassification": _SequenceClassification, "ForTokenClassification": _TokenClassification,
         "ForQuestionAnswering": _QuestionAnswering, "ForMultipleChoice": _MultipleChoice}  # class name suffix → task


def task_heads(family: str, backbone: type, attribute: str, *, sequence: Readout, choice: Readout,
               tokens: Readout = Classifier("last_hidden_state"), spans: Readout = QAOutputs()) -> tuple[type, ...]:
    """A family's four task heads, Hugging Face's classes `{family}ForSequenceClassification`,
    `…ForTokenClassification`, `…ForQuestionAnswering` and `…ForMultipleChoice`: `backbone` (the bare encoder
    class) under `attribute` (its `base_model_prefix`), and the readout of each task."""

    def declare(suffix: str, readout: Readout) -> type:
        doc = f"{backbone.__name__} (`{attribute}`) + the {suffix[3:]} head, read by {readout!r}."
        body = dict(config_class=backbone.config_class, base_model_prefix=attribute, backbone=backbone,
                    readout=readout, __doc__=doc, __module__=__name__)
        return types.new_class(family + suffix, (TASKS[suffix],), exec_body=lambda namespace: namespace.update(body))

    return tuple(declare(suffix, readout) for suffix, readout in zip(TASKS, (sequence, tokens, spans, choice)))


# ---- ModernBERT's readout ------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class ModernBertHead(Readout):
    """`classifier`(`drop`(`head`(x))): ModernBERT's prediction head (dense → act → norm) on each token's state, or,
    `pooled`, on pool(h) by `classifier_pooling` ("cls", with `first_real` each row's first real token as the
    reference's multiple choice takes it (left padding); or "mean"). Dropout `classifier_dropout`."""

    pooled: bool = False
    first_real: bool = False

    def build(self, model, config, outputs, *, dtype, rngs):
        model.head = ModernBertPredictionHead(config, dtype=dtype, rngs=rngs)
        model.drop = nnx.Dropout(config.classifier_dropout, rngs=rngs)
        model.classifier = Linear(config.hidden_size, outputs, init_std=config.hidden_size ** -0.5, dtype=dtype,
                                  rngs=rngs)  # the reference's "final_out" std

    def __call__(self, model, out, attention_mask):
        x = out.last_hidden_state
        if self.pooled:
            x = pool(x, attention_mask, model.config.classifier_pooling, first_real=self.first_real)
        return model.classifier(model.drop(model.head(x)))


# ---- DistilBERT's readout -------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class DistilBertPreClassifier(Readout):
    """`classifier`(`dropout`(ReLU(`pre_classifier`(h_[CLS])))), dropout `seq_classif_dropout` (transformers'
    DistilBertForSequenceClassification and …ForMultipleChoice): (batch, outputs)."""

    def build(self, model, config, outputs, *, dtype, rngs):
        model.pre_classifier = Linear(config.dim, config.dim, init_std=config.initializer_range, dtype=dtype,
                                      rngs=rngs)
        model.dropout = nnx.Dropout(config.seq_classif_dropout, rngs=rngs)
        model.classifier = classifier(config, outputs, dtype=dtype, rngs=rngs)

    def __call__(self, model, out, attention_mask):
        return model.classifier(model.dropout(jax.nn.relu(model.pre_classifier(out.last_hidden_state[:, 0]))))


# ---- DeBERTa's readout ----------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class DebertaPooled(Readout):
    """`classifier`(`dropout`(`pooler`(h))), the `ContextPooler` on h_[CLS] and dropout `cls_dropout` (else the
    hidden dropout), as transformers' DebertaV2ForSequenceClassification and …ForMultipleChoice: (batch, outputs)."""

    def build(self, model, config, outputs, *, dtype, rngs):
        model.pooler = ContextPooler(config, dtype=dtype, rngs=rngs)
        model.dropout = nnx.Dropout(classifier_dropout(config), rngs=rngs)
        model.classifier = classifier(config, outputs, dtype=dtype, rngs=rngs)

    def __call__(self, model, out, attention_mask):
        return model.classifier(model.dropout(model.pooler(out.last_hidden_state)))


# ---- the families ----------------------------------------------------------------------------------------------

POOLER = Classifier("pooler_output")
# ConvBERT's multiple-choice summary when config.json names none: the reference's getattr defaults (the last
# position, no projection, no activation); ELECTRA's: ElectraConfig's (h_[CLS], projected, GELU, dropout 0.1).
CONVBERT_SUMMARY = dict(summary_type="last", summary_use_proj=False, summary_activation=None,
                        summary_first_dropout=0.0, summary_last_dropout=0.0)
ELECTRA_SUMMARY = dict(summary_type="first", summary_use_proj=True, summary_activation="gelu",
                       summary_first_dropout=0.0, summary_last_dropout=0.1)

(BertForSequenceClassification, BertForTokenClassification, BertForQuestionAnswering,
 BertForMultipleChoice) = task_heads("Bert", BertModel, "bert", sequence=POOLER, choice=POOLER)
(MobileBertForSequenceClassification, MobileBertForTokenClassification, MobileBertForQuestionAnswering,
 MobileBertForMultipleChoice) = task_heads("MobileBert", MobileBertModel, "mobilebert", sequence=POOLER,
                                           choice=POOLER)  # the pooler: h_[CLS] itself without classifier_activation
# ConvBERT's classification head uses `hidden_act`; ELECTRA's GELU whatever `hidden_act` says, as the reference
(ConvBertForSequenceClassification, ConvBertForTokenClassification, ConvBertForQuestionAnswering,
 ConvBertForMultipleChoice) = task_heads("ConvBert", ConvBertModel, "convbert", sequence=Head(),
                                         choice=Summary(CONVBERT_SUMMARY))
(ElectraForSequenceClassification, ElectraForTokenClassification, ElectraForQuestionAnswering,
 ElectraForMultipleChoice) = task_heads("Electra", ElectraModel, "electra", sequence=Head("gelu"),
                                        choice=Summary(ELECTRA_SUMMARY))
# RoBERTa (Liu et al. 2019; fairseq's `RobertaClassificationHead`): tanh on h_<s>; multiple choice on the pooler
# with the encoder's hidden dropout, whatever `classifier_dropout` says (as the reference)
(RobertaForSequenceClassification, RobertaForTokenClassification, RobertaForQuestionAnswering,
 RobertaForMultipleChoice) = task_heads("Roberta", RobertaModel, "roberta", sequence=Head("tanh"),
                                        choice=Classifier("pooler_output", hidden_dropout=True))
(ModernBertForSequenceClassification, ModernBertForTokenClassification, ModernBertForQuestionAnswering,
 ModernBertForMultipleChoice) = task_heads("ModernBert", ModernBertModel, "model",
                                           sequence=ModernBertHead(pooled=True),
                                           choice=ModernBertHead(pooled=True, first_real=True),
                                           tokens=ModernBertHead(), spans=ModernBertHead())
# ALBERT (Lan et al. 2020): the pooler, dropout `classifier_dropout_prob`
(AlbertForSequenceClassification, AlbertForTokenClassification, AlbertForQuestionAnswering,
 AlbertForMultipleChoice) = task_heads("Albert", AlbertModel, "albert", sequence=POOLER, choice=POOLER)
# DistilBERT (no pooler): a hidden layer on h_[CLS]; tokens with the encoder's dropout, spans after `qa_dropout`
(DistilBertForSequenceClassification, DistilBertForTokenClassification, DistilBertForQuestionAnswering,
 DistilBertForMultipleChoice) = task_heads("DistilBert", DistilBertModel, "distilbert",
                                           sequence=DistilBertPreClassifier(), choice=DistilBertPreClassifier(),
                                           spans=QAOutputs(dropout="qa_dropout"))
# DeBERTa-v2/v3: the context pooler (dense + act on h_[CLS]) for sequences and choices
(DebertaV2ForSequenceClassification, DebertaV2ForTokenClassification, DebertaV2ForQuestionAnswering,
 DebertaV2ForMultipleChoice) = task_heads("DebertaV2", DebertaV2Model, "deberta", sequence=DebertaPooled(),
                                          choice=DebertaPooled())
# Flex (models/flex.py): BERT's readout, the pooler on h_[CLS]
(FlexForSequenceClassification, FlexForTokenClassification, FlexForQuestionAnswering,
 FlexForMultipleChoice) = task_heads("Flex", FlexModel, "flex", sequence=POOLER, choice=POOLER)
