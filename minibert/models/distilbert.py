"""DistilBERT: BERT with half the layers, distilled from a BERT teacher.

Sanh, Debut, Chaumond & Wolf, "DistilBERT, a distilled version of BERT: smaller, faster, cheaper and lighter"
(2019), arXiv 1910.01108.
    §3  the student is BERT's post-LN encoder with half the layers (6 of 12), no token-type embeddings and no
        pooler; it is initialised from the teacher by taking one layer out of two
    §3  training loss = α·L_ce (soft targets of the teacher, temperature T) + β·L_mlm + γ·L_cos (cosine between
        the student's and the teacher's hidden states)          → distillation.py, training/distill.py
`from_teacher` builds that student from a BERT masked LM (§3, "initialize the student from the teacher by taking
one layer out of two"): teacher layers 0, 2, 4, … become the student's, with the embeddings (token types dropped)
and the MLM head.
The layers are BERT's, under other names (transformers' `modeling_distilbert.py`):
    h = LN_sa(x + (softmax(q kᵀ/√d) v) W_out)          no dropout on the attention output, only on its weights
    y = LN_out(h + Dropout(W_2 act(W_1 h)))
Positions are learned, or a fixed sinusoidal table (`sinusoidal_pos_embds`, Vaswani et al. 2017 §3.5) that
transformers writes into the same `position_embeddings.weight` and then trains like any other weight: the table
loads as stored. The MLM head is `vocab_transform` → act → `vocab_layer_norm` → `vocab_projector` (tied to the
token embeddings), at the top level of the model, as Hugging Face names them.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from minibert import losses
from minibert.config import PretrainedConfig
from minibert.models.base import PreTrainedModel
from minibert.models.heads import select_masked
from minibert.models.outputs import ModelOutput
from minibert.nn.activations import activation
from minibert.nn.attention import dot_product_attention, padding_mask
from minibert.nn.embeddings import Embedding
from minibert.nn.linear import Linear
from minibert.nn.norms import LayerNorm
from minibert.nn.tied_decoder import TiedDecoder

LAYER_NORM_EPS = 1e-12   # fixed in the reference, not a config field


@dataclasses.dataclass
class DistilBertConfig(PretrainedConfig):
    """DistilBERT with Hugging Face's names and defaults (distilbert-base-uncased: 6 layers, dim 768, 12 heads).
    `hidden_size`, `num_attention_heads` and `num_hidden_layers` read `dim`, `n_heads` and `n_layers`, as
    transformers' `attribute_map` does."""

    model_type: ClassVar[str] = "distilbert"

    vocab_size: int = 30522
    max_position_embeddings: int = 512
    sinusoidal_pos_embds: bool = False
    n_layers: int = 6
    n_heads: int = 12
    dim: int = 768
    hidden_dim: int = 3072
    dropout: float = 0.1
    attention_dropout: float = 0.1
    activation: str = "gelu"
    initializer_range: float = 0.02
    qa_dropout: float = 0.1
    seq_classif_dropout: float = 0.2
    pad_token_id: int = 0
    tie_word_embeddings: bool = True

    hidden_size = property(lambda self: self.dim)
    num_attention_heads = property(lambda self: self.n_heads)
    num_hidden_layers = property(lambda self: self.n_layers)
    hidden_dropout_prob = property(lambda self: self.dropout)          # the task heads' names for its dropout
    classifier_dropout = property(lambda self: None)                   # (none of its own: the encoder's)

    def validate(self) -> None:
        super().validate()
        if self.dim % self.n_heads:
            raise ValueError(f"dim {self.dim} is not a multiple of n_heads {self.n_heads}")


def sinusoidal_table(positions: int, dim: int) -> np.ndarray:
    """PE(p, 2i) = sin(p / 10000^(2i/dim)), PE(p, 2i+1) = cos(p / 10000^(2i/dim)) (Vaswani et al. 2017, §3.5):
    (positions, dim) float32."""
    angle = np.arange(positions)[:, None] / np.power(10000, 2 * (np.arange(dim) // 2) / dim)[None, :]
    return np.where(np.arange(dim) % 2 == 0, np.sin(angle), np.cos(angle)).astype(np.float32)


class DistilBertEmbeddings(nnx.Module):
    """x = Dropout(LayerNorm(E_token[ids] + E_position[i])): (batch, seq) → (batch, seq, dim). No token types."""

    def __init__(self, config: DistilBertConfig, *, dtype, rngs: nnx.Rngs):
        c = config
        self.word_embeddings = Embedding(c.vocab_size, c.dim, padding_idx=c.pad_token_id, init_std=c.initializer_range,
                                         dtype=dtype, rngs=rngs)
        self.position_embeddings = Embedding(c.max_position_embeddings, c.dim, init_std=c.initializer_range,
                                             dtype=dtype, rngs=rngs)
        if c.sinusoidal_pos_embds:
            self.position_embeddings.weight[...] = jnp.asarray(sinusoidal_table(c.max_position_embeddings, c.dim))
        self.LayerNorm = LayerNorm(c.dim, eps=LAYER_NORM_EPS, dtype=dtype)
        self.dropout = nnx.Dropout(c.dropout, rngs=rngs)

    def __call__(self, input_ids: jax.Array | None, inputs_embeds: jax.Array | None = None) -> jax.Array:
        x = self.word_embeddings(input_ids) if inputs_embeds is None else inputs_embeds
        x = x + self.position_embeddings(jnp.arange(x.shape[1]))[None]
        return self.dropout(self.LayerNorm(x))


class DistilBertSelfAttention(nnx.Module):
    """softmax(q kᵀ/√d, padding masked) v, then W_out: (batch, seq, dim) → (batch, seq, dim)."""

    def __init__(self, config: DistilBertConfig, *, dtype, rngs: nnx.Rngs):
        c = config
        self.n_heads = c.n_heads
        self.attention_implementation = "reference"
        self.record_attention = False
        linear = dict(init_std=c.initializer_range, dtype=dtype, rngs=rngs)
        self.q_lin, self.k_lin, self.v_lin, self.out_lin = (Linear(c.dim, c.dim, **linear) for _ in range(4))
        self.dropout = nnx.Dropout(c.attention_dropout, rngs=rngs)

    def __call__(self, x: jax.Array, mask: jax.Array) -> jax.Array:
        split = lambda t: t.reshape(*t.shape[:-1], self.n_heads, -1)            # (b, s, h·d) → (b, s, h, d)
        heads = dot_product_attention(split(self.q_lin(x)), split(self.k_lin(x)), split(self.v_lin(x)),
                                      dropout=self.dropout, mask=mask, implementation=self.attention_implementation,
                                      recorder=self)
        return self.out_lin(heads.reshape(x.shape[:-1] + (-1,)))


class FFN(nnx.Module):
    """Dropout(W_2 act(W_1 h)): (batch, seq, dim) → (batch, seq, dim)."""

    def __init__(self, config: DistilBertConfig, *, dtype, rngs: nnx.Rngs):
        c = config
        self.lin1 = Linear(c.dim, c.hidden_dim, init_std=c.initializer_range, dtype=dtype, rngs=rngs)
        self.lin2 = Linear(c.hidden_dim, c.dim, init_std=c.initializer_range, dtype=dtype, rngs=rngs)
        self.act = activation(c.activation)
        self.dropout = nnx.Dropout(c.dropout, rngs=rngs)

    def __call__(self, h: jax.Array) -> jax.Array:
        return self.dropout(self.lin2(self.act(self.lin1(h))))


class TransformerBlock(nnx.Module):
    """One post-LN layer: h = LN_sa(x + attention(x)); y = LN_out(h + FFN(h))."""

    def __init__(self, config: DistilBertConfig, *, dtype, rngs: nnx.Rngs):
        self.attention = DistilBertSelfAttention(config, dtype=dtype, rngs=rngs)
        self.sa_layer_norm = LayerNorm(config.dim, eps=LAYER_NORM_EPS, dtype=dtype)
        self.ffn = FFN(config, dtype=dtype, rngs=rngs)
        self.output_layer_norm = LayerNorm(config.dim, eps=LAYER_NORM_EPS, dtype=dtype)

    def __call__(self, x: jax.Array, mask: jax.Array) -> jax.Array:
        h = self.sa_layer_norm(x + self.attention(x, mask))
        return self.output_layer_norm(h + self.ffn(h))


class Transformer(nnx.Module):
    """`n_layers` blocks; returns the last hidden state and every block's input and output."""

    def __init__(self, config: DistilBertConfig, *, dtype, rngs: nnx.Rngs):
        self.layer = nnx.List([TransformerBlock(config, dtype=dtype, rngs=rngs) for _ in range(config.n_layers)])

    def __call__(self, x: jax.Array, mask: jax.Array) -> tuple[jax.Array, tuple[jax.Array, ...]]:
        states = [x]
        for layer in self.layer:
            x = layer(x, mask)
            states.append(x)
        return x, tuple(states)


class DistilBertModel(PreTrainedModel):
    """The bare encoder: (batch, seq) ids → last_hidden_state (batch, seq, dim). No pooler; token_type_ids, if
    given, are ignored (the model has no token types)."""

    config_class = DistilBertConfig
    is_base_model = True

    def __init__(self, config: DistilBertConfig, *, dtype=jnp.float32, rngs: nnx.Rngs | None = None):
        config.validate()
        rngs = rngs or nnx.Rngs(0)
        self.config = config
        self.embeddings = DistilBertEmbeddings(config, dtype=dtype, rngs=rngs)
        self.transformer = Transformer(config, dtype=dtype, rngs=rngs)

    def forward(self, input_ids, attention_mask, token_type_ids, *, output_hidden_states=False, inputs_embeds=None):
        last, states = self.transformer(self.embeddings(input_ids, inputs_embeds), padding_mask(attention_mask))
        return ModelOutput(last_hidden_state=last, hidden_states=states if output_hidden_states else None)


class DistilBertForMaskedLM(PreTrainedModel):
    """DistilBERT with its MLM head: logits (batch, seq, vocab); loss = MLM cross-entropy given `labels` (-100 where
    nothing is predicted). Given `masked_positions` (batch, n), the head runs there only (a sparse head):
    logits (batch, n, vocab), `labels` (batch, n)."""

    config_class = DistilBertConfig
    base_model_prefix = "distilbert"
    ignored_checkpoint_keys = (r"^vocab_projector\.weight$",)   # the tied copy, when tied

    def __init__(self, config: DistilBertConfig, *, dtype=jnp.float32, rngs: nnx.Rngs | None = None):
        rngs = rngs or nnx.Rngs(0)
        c = config
        self.config = config
        self.distilbert = DistilBertModel(c, dtype=dtype, rngs=rngs)
        self.vocab_transform = Linear(c.dim, c.dim, init_std=c.initializer_range, dtype=dtype, rngs=rngs)
        self.activation = activation(c.activation)
        self.vocab_layer_norm = LayerNorm(c.dim, eps=LAYER_NORM_EPS, dtype=dtype)
        self.vocab_projector = TiedDecoder(c.dim, c.vocab_size, tied=c.tie_word_embeddings,
                                           init_std=c.initializer_range, dtype=dtype, rngs=rngs)   # h Eᵀ + b

    def forward(self, input_ids, attention_mask, token_type_ids, *, output_hidden_states=False, labels=None,
                masked_positions=None, inputs_embeds=None):
        out = self.distilbert.forward(input_ids, attention_mask, token_type_ids,
                                      output_hidden_states=output_hidden_states, inputs_embeds=inputs_embeds)
        scored = select_masked(out.last_hidden_state, masked_positions, labels)  # all positions, or the masked ones
        h = self.vocab_layer_norm(self.activation(self.vocab_transform(scored)))
        logits = self.vocab_projector(h, self.distilbert.embeddings.word_embeddings.weight[...])
        return out.replace(logits=logits, loss=None if labels is None else losses.masked_lm_loss(logits, labels))


# teacher (BERT) name → student (DistilBERT) name, for the parts `from_teacher` copies
EMBEDDINGS = {"bert.embeddings.word_embeddings": "distilbert.embeddings.word_embeddings",
              "bert.embeddings.position_embeddings": "distilbert.embeddings.position_embeddings",
              "bert.embeddings.LayerNorm": "distilbert.embeddings.LayerNorm",
              "cls.predictions.transform.dense": "vocab_transform",
              "cls.predictions.transform.LayerNorm": "vocab_layer_norm"}
LAYER = {"attention.self.query": "attention.q_lin", "attention.self.key": "attention.k_lin",
         "attention.self.value": "attention.v_lin", "attention.output.dense": "attention.out_lin",
         "attention.output.LayerNorm": "sa_layer_norm", "intermediate.dense": "ffn.lin1", "output.dense": "ffn.lin2",
         "output.LayerNorm": "output_layer_norm"}


def from_teacher(teacher, *, dtype=jnp.float32, rngs: nnx.Rngs | None = None) -> DistilBertForMaskedLM:
    """A DistilBERT masked LM of the teacher's width, heads, vocabulary and positions and half its layers
    (⌈L/2⌉), every weight copied from the teacher: student layer i ← teacher layer 2i (Sanh et al. 2019, §3).

    `teacher`: a BERT `BertForMaskedLM` or `BertForPreTraining` with a tied MLM decoder. Raises ValueError for
    any other model."""
    from minibert.checkpoints.hf import model_state_dict

    name = type(teacher).__name__
    c = teacher.config
    if name not in ("BertForMaskedLM", "BertForPreTraining") or not c.tie_word_embeddings:
        raise ValueError(f"the distilbert recipe starts from a BERT masked LM with tied embeddings (BertForMaskedLM "
                         f"or BertForPreTraining), got {name}")
    config = DistilBertConfig(vocab_size=c.vocab_size, max_position_embeddings=c.max_position_embeddings,
                              n_layers=(c.num_hidden_layers + 1) // 2, n_heads=c.num_attention_heads,
                              dim=c.hidden_size, hidden_dim=c.intermediate_size, dropout=c.hidden_dropout_prob,
                              attention_dropout=c.attention_probs_dropout_prob, activation=c.hidden_act,
                              initializer_range=c.initializer_range, pad_token_id=c.pad_token_id)
    student = DistilBertForMaskedLM(config, dtype=dtype, rngs=rngs)
    source, target = model_state_dict(teacher), model_state_dict(student)
    copies = dict(EMBEDDINGS)
    for i in range(config.n_layers):
        copies.update({f"bert.encoder.layer.{2 * i}.{a}": f"distilbert.transformer.layer.{i}.{b}"
                       for a, b in LAYER.items()})
    for a, b in copies.items():
        for leaf in ("weight", "bias") if f"{b}.bias" in target else ("weight",):   # tables have no bias
            target[f"{b}.{leaf}"].set_value(jnp.array(source[f"{a}.{leaf}"][...]))   # a copy: no shared buffer
    target["vocab_projector.bias"].set_value(jnp.array(source["cls.predictions.bias"][...]))
    return student
