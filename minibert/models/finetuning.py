"""Task heads for fine-tuning (Devlin et al., 2019, §4; Figure 4), for every family `transformers` has them for.

    sequence classification  (§4.1, GLUE)      logits (batch, num_labels)   labels (batch,)
    token classification     (§5.3, NER)       logits (batch, seq, num_labels)   labels (batch, seq), -100 ignored
    question answering       (§4.2, SQuAD)     start_logits, end_logits (batch, seq)   start/end_positions (batch,)
    multiple choice          (§4.4, SWAG)      inputs (batch, choices, seq) → logits (batch, choices)   labels (batch,)

Each family reads its sequence vector its own way (models/task_heads.py): BERT and MobileBERT the pooler's
tanh(W h_[CLS]); ELECTRA and ConvBERT a two-layer head on h_[CLS] for classification and a `SequenceSummary`
for multiple choice; RoBERTa the two-layer head (tanh) on h_<s> for classification, the pooler for multiple
choice; ModernBERT its prediction head on the [CLS] or mean-pooled state (`classifier_pooling`).
Class and attribute names are Hugging Face's (`bert.pooler.dense.weight`, `classifier.out_proj.weight`,
`qa_outputs.weight`, `head.norm.weight`), so checkpoints load through the generic loader and `from_pretrained`
picks the class from `architectures`.

Labels live where Hugging Face keeps them, in config.json: `id2label` ({"0": "NEGATIVE", ...}) and `label2id`;
`num_labels` is their count (2 when neither is given). Here they sit in the config's `extra` dict:
`num_labels`, `id2label` and `set_labels` read and write them. `problem_type` and `classifier_dropout` too.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx, struct

from minibert.config import BertConfig, id2label, num_labels, set_labels  # noqa: F401  (this module's API)
from minibert.losses import cross_entropy
from minibert.models.base import PreTrainedModel
from minibert.models.bert import BertModel
from minibert.models.convbert import ConvBertConfig, ConvBertModel
from minibert.models.electra import ElectraConfig, ElectraModel
from minibert.models.mobilebert import MobileBertConfig, MobileBertModel
from minibert.models.modernbert import ModernBertModel, ModernBertPredictionHead, _ModernBertPreTrainedModel
from minibert.models.outputs import ModelOutput
from minibert.models.roberta import RobertaModel, _RobertaPreTrainedModel
from minibert.models.task_heads import ClassificationHead, SequenceSummary, pool
from minibert.models.task_losses import sequence_classification_loss, span_loss
from minibert.nn.linear import Linear


# ---- labels in the config (id2label, num_labels, set_labels: minibert/config.py) ------------------------------

def classifier_dropout(config) -> float:
    """`classifier_dropout`, falling back to the encoder's hidden dropout, as Hugging Face does."""
    rate = getattr(config, "classifier_dropout", None)
    rate = config.extra.get("classifier_dropout") if rate is None else rate
    return getattr(config, "hidden_dropout_prob", 0.0) if rate is None else rate


@struct.dataclass
class QuestionAnsweringOutput(ModelOutput):
    start_logits: jax.Array | None = None        # (batch, seq)
    end_logits: jax.Array | None = None          # (batch, seq)


# ---- the families' encoders ----------------------------------------------------------------------------------

class _Bert(PreTrainedModel):
    config_class = BertConfig
    base_model_prefix = "bert"

    @staticmethod
    def build_encoder(config, *, pooler: bool, dtype, rngs):
        return BertModel(config, add_pooling_layer=pooler, dtype=dtype, rngs=rngs)


class _MobileBert(PreTrainedModel):
    config_class = MobileBertConfig
    base_model_prefix = "mobilebert"

    @staticmethod
    def build_encoder(config, *, pooler: bool, dtype, rngs):
        return MobileBertModel(config, add_pooling_layer=pooler, dtype=dtype, rngs=rngs)


class _ConvBert(PreTrainedModel):
    """ConvBERT: no pooler; the classification head uses `hidden_act`; the multiple-choice summary has
    the reference's defaults when config.json names none: the last position, no projection, no activation."""

    config_class = ConvBertConfig
    base_model_prefix = "convbert"
    summary_defaults = dict(summary_type="last", summary_use_proj=False, summary_activation=None,
                            summary_first_dropout=0.0, summary_last_dropout=0.0)

    @staticmethod
    def build_encoder(config, *, pooler: bool, dtype, rngs):
        return ConvBertModel(config, dtype=dtype, rngs=rngs)

    @staticmethod
    def classifier_act(config) -> str:
        return config.hidden_act


class _Electra(PreTrainedModel):
    """ELECTRA: no pooler; the classification head uses GELU whatever `hidden_act` says (as the reference);
    the multiple-choice summary defaults to ElectraConfig's: the first position, projected, GELU, dropout 0.1."""

    config_class = ElectraConfig
    base_model_prefix = "electra"
    summary_defaults = dict(summary_type="first", summary_use_proj=True, summary_activation="gelu",
                            summary_first_dropout=0.0, summary_last_dropout=0.1)

    @staticmethod
    def build_encoder(config, *, pooler: bool, dtype, rngs):
        return ElectraModel(config, dtype=dtype, rngs=rngs)

    @staticmethod
    def classifier_act(config) -> str:
        return "gelu"


class _Roberta(_RobertaPreTrainedModel):
    """RoBERTa: the classification head on h_<s> with tanh (no pooler); the multiple-choice dropout is the
    encoder's hidden dropout, whatever `classifier_dropout` says (as the reference)."""

    base_model_prefix = "roberta"

    @staticmethod
    def build_encoder(config, *, pooler: bool, dtype, rngs):
        return RobertaModel(config, add_pooling_layer=pooler, dtype=dtype, rngs=rngs)

    @staticmethod
    def classifier_act(config) -> str:
        return "tanh"


# ---- the tasks -----------------------------------------------------------------------------------------------

class _TaskModel(PreTrainedModel):
    """An encoder under `base_model_prefix` (built by the family's `build_encoder`) and a task head."""

    uses_pooler = False

    def __init__(self, config, *, dtype=jnp.float32, rngs: nnx.Rngs | None = None):
        rngs = rngs or nnx.Rngs(0)
        self.config = config
        setattr(self, self.base_model_prefix,
                self.build_encoder(config, pooler=self.uses_pooler, dtype=dtype, rngs=rngs))
        self.build_head(config, dtype=dtype, rngs=rngs)

    def encode(self, input_ids, attention_mask, token_type_ids, output_hidden_states: bool,
               inputs_embeds=None) -> ModelOutput:
        encoder = getattr(self, self.base_model_prefix)
        return encoder.forward(input_ids, attention_mask, token_type_ids, output_hidden_states=output_hidden_states,
                               inputs_embeds=inputs_embeds)

    def linear(self, in_features: int, out_features: int, *, dtype, rngs) -> Linear:
        return Linear(in_features, out_features, init_std=self.config.initializer_range, dtype=dtype, rngs=rngs)


class _SequenceClassification(_TaskModel):
    def forward(self, input_ids, attention_mask, token_type_ids, *, output_hidden_states=False, labels=None,
                inputs_embeds=None):
        out = self.encode(input_ids, attention_mask, token_type_ids, output_hidden_states, inputs_embeds)
        logits = self.classify(out, attention_mask)
        loss = None if labels is None else sequence_classification_loss(
            logits, labels, self.config.extra.get("problem_type"))
        return out.replace(logits=logits, loss=loss)


class _PooledSequenceClassification(_SequenceClassification):
    """logits = classifier(Dropout(pooler_output)) (BERT §4.1: the pooled [CLS] and one linear layer)."""

    uses_pooler = True

    def build_head(self, config, *, dtype, rngs):
        self.dropout = nnx.Dropout(classifier_dropout(config), rngs=rngs)
        self.classifier = self.linear(config.hidden_size, num_labels(config), dtype=dtype, rngs=rngs)

    def classify(self, out, attention_mask):
        return self.classifier(self.dropout(out.pooler_output))


class _HeadSequenceClassification(_SequenceClassification):
    """logits = ClassificationHead(h): a hidden layer on h_[CLS] (ELECTRA, ConvBERT)."""

    def build_head(self, config, *, dtype, rngs):
        self.classifier = ClassificationHead(config.hidden_size, num_labels(config), self.classifier_act(config),
                                             dropout=classifier_dropout(config), init_std=config.initializer_range,
                                             dtype=dtype, rngs=rngs)

    def classify(self, out, attention_mask):
        return self.classifier(out.last_hidden_state)


class _TokenClassification(_TaskModel):
    """logits = classifier(Dropout(h_t)) for every token t: (batch, seq, num_labels)."""

    def build_head(self, config, *, dtype, rngs):
        self.dropout = nnx.Dropout(classifier_dropout(config), rngs=rngs)
        self.classifier = self.linear(config.hidden_size, num_labels(config), dtype=dtype, rngs=rngs)

    def token_logits(self, hidden):
        return self.classifier(self.dropout(hidden))

    def forward(self, input_ids, attention_mask, token_type_ids, *, output_hidden_states=False, labels=None,
                inputs_embeds=None):
        out = self.encode(input_ids, attention_mask, token_type_ids, output_hidden_states, inputs_embeds)
        logits = self.token_logits(out.last_hidden_state)
        return out.replace(logits=logits, loss=None if labels is None else cross_entropy(logits, labels))


class _QuestionAnswering(_TaskModel):
    """[start, end]_t = qa_outputs(h_t) (§4.2: a start vector S and an end vector E dotted with every token)."""

    def build_head(self, config, *, dtype, rngs):
        self.qa_outputs = self.linear(config.hidden_size, _span_outputs(config), dtype=dtype, rngs=rngs)

    def span_logits(self, hidden):
        return self.qa_outputs(hidden)

    def forward(self, input_ids, attention_mask, token_type_ids, *, output_hidden_states=False, start_positions=None,
                end_positions=None, inputs_embeds=None):
        out = self.encode(input_ids, attention_mask, token_type_ids, output_hidden_states, inputs_embeds)
        logits = self.span_logits(out.last_hidden_state)                          # (batch, seq, 2)
        start, end = logits[..., 0], logits[..., 1]
        loss = None
        if start_positions is not None and end_positions is not None:
            loss = span_loss(start, end, start_positions, end_positions)
        return QuestionAnsweringOutput(last_hidden_state=out.last_hidden_state, hidden_states=out.hidden_states,
                                       attentions=out.attentions, start_logits=start, end_logits=end, loss=loss)


def _span_outputs(config) -> int:
    n = num_labels(config)
    if n != 2:
        raise ValueError(f"question answering predicts a start and an end: num_labels must be 2, got {n}")
    return n


class _MultipleChoice(_TaskModel):
    """Each (context, choice) row is scored alone, score = classifier(vector(row)), and the scores of one
    example's choices are the logits (§4.4): (batch, choices, seq) → (batch, choices)."""

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
        logits = self.score(out, flat(attention_mask))[..., 0].reshape(batch, choices)
        return out.replace(logits=logits, loss=None if labels is None else cross_entropy(logits, labels))


class _PooledMultipleChoice(_MultipleChoice):
    """score = classifier(Dropout(pooler_output)), classifier: hidden → 1."""

    uses_pooler = True

    def build_head(self, config, *, dtype, rngs):
        self.dropout = nnx.Dropout(classifier_dropout(config), rngs=rngs)
        self.classifier = self.linear(config.hidden_size, 1, dtype=dtype, rngs=rngs)

    def score(self, out, attention_mask):
        return self.classifier(self.dropout(out.pooler_output))


class _SummaryMultipleChoice(_MultipleChoice):
    """score = classifier(SequenceSummary(h)), the summary configured by config.json's `summary_*` keys."""

    def build_head(self, config, *, dtype, rngs):
        get = lambda key: config.extra.get(key, self.summary_defaults[key])
        if config.extra.get("summary_proj_to_labels"):
            raise ValueError("summary_proj_to_labels is not supported: the multiple-choice classifier reads "
                             "a hidden_size-wide summary")
        self.sequence_summary = SequenceSummary(config.hidden_size, summary_type=get("summary_type"),
                                                use_proj=get("summary_use_proj"), act=get("summary_activation"),
                                                first_dropout=get("summary_first_dropout"),
                                                last_dropout=get("summary_last_dropout"),
                                                init_std=config.initializer_range, dtype=dtype, rngs=rngs)
        self.classifier = self.linear(config.hidden_size, 1, dtype=dtype, rngs=rngs)

    def score(self, out, attention_mask):
        return self.classifier(self.sequence_summary(out.last_hidden_state))


# ---- BERT, MobileBERT, ConvBERT, ELECTRA ---------------------------------------------------------------------

class BertForSequenceClassification(_PooledSequenceClassification, _Bert):
    """BERT + Dropout + Linear(hidden → num_labels) on the pooled [CLS]."""


class BertForTokenClassification(_TokenClassification, _Bert):
    """BERT (no pooler) + Dropout + Linear(hidden → num_labels) on every token."""


class BertForQuestionAnswering(_QuestionAnswering, _Bert):
    """BERT (no pooler) + `qa_outputs` Linear(hidden → 2): start and end logits."""


class BertForMultipleChoice(_PooledMultipleChoice, _Bert):
    """BERT + Dropout + Linear(hidden → 1) on each choice's pooled [CLS]."""


class MobileBertForSequenceClassification(_PooledSequenceClassification, _MobileBert):
    """MobileBERT + Dropout + Linear on the pooler output (h_[CLS] itself without `classifier_activation`)."""


class MobileBertForTokenClassification(_TokenClassification, _MobileBert):
    """MobileBERT (no pooler) + Dropout + Linear(hidden → num_labels) on every token."""


class MobileBertForQuestionAnswering(_QuestionAnswering, _MobileBert):
    """MobileBERT (no pooler) + `qa_outputs` Linear(hidden → 2)."""


class MobileBertForMultipleChoice(_PooledMultipleChoice, _MobileBert):
    """MobileBERT + Dropout + Linear(hidden → 1) on each choice's pooler output."""


class ConvBertForSequenceClassification(_HeadSequenceClassification, _ConvBert):
    """ConvBERT + ClassificationHead(h_[CLS]) with `hidden_act`."""


class ConvBertForTokenClassification(_TokenClassification, _ConvBert):
    """ConvBERT + Dropout + Linear(hidden → num_labels) on every token."""


class ConvBertForQuestionAnswering(_QuestionAnswering, _ConvBert):
    """ConvBERT + `qa_outputs` Linear(hidden → 2)."""


class ConvBertForMultipleChoice(_SummaryMultipleChoice, _ConvBert):
    """ConvBERT + SequenceSummary (default: the last position) + Linear(hidden → 1)."""


class ElectraForSequenceClassification(_HeadSequenceClassification, _Electra):
    """ELECTRA + ClassificationHead(h_[CLS]) with GELU (Clark et al., 2020, Appendix A: GLUE on [CLS])."""


class ElectraForTokenClassification(_TokenClassification, _Electra):
    """ELECTRA + Dropout + Linear(hidden → num_labels) on every token."""


class ElectraForQuestionAnswering(_QuestionAnswering, _Electra):
    """ELECTRA + `qa_outputs` Linear(hidden → 2)."""


class ElectraForMultipleChoice(_SummaryMultipleChoice, _Electra):
    """ELECTRA + SequenceSummary (default: h_[CLS], projected, GELU) + Linear(hidden → 1)."""


# ---- RoBERTa (Liu et al. 2019; the heads of fairseq's `RobertaClassificationHead`) ---------------------------

class RobertaForSequenceClassification(_HeadSequenceClassification, _Roberta):
    """RoBERTa + ClassificationHead(h_<s>) with tanh: `classifier.dense`, `classifier.out_proj`."""


class RobertaForTokenClassification(_TokenClassification, _Roberta):
    """RoBERTa + Dropout + Linear(hidden → num_labels) on every token."""


class RobertaForQuestionAnswering(_QuestionAnswering, _Roberta):
    """RoBERTa + `qa_outputs` Linear(hidden → 2): start and end logits."""


class RobertaForMultipleChoice(_PooledMultipleChoice, _Roberta):
    """RoBERTa + Dropout(hidden_dropout_prob) + Linear(hidden → 1) on each choice's pooler output."""

    def build_head(self, config, *, dtype, rngs):
        self.dropout = nnx.Dropout(config.hidden_dropout_prob, rngs=rngs)
        self.classifier = self.linear(config.hidden_size, 1, dtype=dtype, rngs=rngs)


# ---- ModernBERT ----------------------------------------------------------------------------------------------

class _ModernBert(_ModernBertPreTrainedModel):
    """ModernBERT's heads: Linear(Dropout(head(x))), where `head` is the prediction head (dense → act → norm)
    and x is the token states, or for a sequence `pool(h)` by `classifier_pooling` ("cls" or "mean")."""

    base_model_prefix = "model"

    @staticmethod
    def build_encoder(config, *, pooler: bool, dtype, rngs):
        return ModernBertModel(config, dtype=dtype, rngs=rngs)

    def build_modernbert_head(self, config, outputs: int, *, dtype, rngs):
        self.head = ModernBertPredictionHead(config, dtype=dtype, rngs=rngs)
        self.drop = nnx.Dropout(config.extra.get("classifier_dropout", 0.0), rngs=rngs)
        self.classifier = Linear(config.hidden_size, outputs, init_std=config.hidden_size ** -0.5, dtype=dtype,
                                 rngs=rngs)  # the reference's "final_out" std

    def head_logits(self, x):
        return self.classifier(self.drop(self.head(x)))

    def pooled(self, hidden, attention_mask, *, first_real: bool = False):
        return pool(hidden, attention_mask, self.config.extra.get("classifier_pooling", "cls"), first_real=first_real)


class ModernBertForSequenceClassification(_SequenceClassification, _ModernBert):
    """ModernBERT + head on the [CLS] (or mean-pooled) state + Linear(hidden → num_labels)."""

    def build_head(self, config, *, dtype, rngs):
        self.build_modernbert_head(config, num_labels(config), dtype=dtype, rngs=rngs)

    def classify(self, out, attention_mask):
        return self.head_logits(self.pooled(out.last_hidden_state, attention_mask))


class ModernBertForTokenClassification(_TokenClassification, _ModernBert):
    """ModernBERT + head + Linear(hidden → num_labels) on every token."""

    def build_head(self, config, *, dtype, rngs):
        self.build_modernbert_head(config, num_labels(config), dtype=dtype, rngs=rngs)

    def token_logits(self, hidden):
        return self.head_logits(hidden)


class ModernBertForQuestionAnswering(_QuestionAnswering, _ModernBert):
    """ModernBERT + head + `classifier` Linear(hidden → 2): start and end logits."""

    def build_head(self, config, *, dtype, rngs):
        self.build_modernbert_head(config, _span_outputs(config), dtype=dtype, rngs=rngs)

    def span_logits(self, hidden):
        return self.head_logits(hidden)


class ModernBertForMultipleChoice(_MultipleChoice, _ModernBert):
    """ModernBERT + head on each choice's pooled state + Linear(hidden → 1); "cls" pooling takes each row's
    first real token, as the reference does here (left padding)."""

    def build_head(self, config, *, dtype, rngs):
        self.build_modernbert_head(config, 1, dtype=dtype, rngs=rngs)

    def score(self, out, attention_mask):
        return self.head_logits(self.pooled(out.last_hidden_state, attention_mask, first_real=True))
