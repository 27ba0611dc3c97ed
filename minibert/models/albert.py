"""ALBERT: BERT with fewer parameters — factorised embeddings, layers shared across depth, sentence order.

Lan et al., "ALBERT: A Lite BERT for Self-supervised Learning of Language Representations" (ICLR 2020).
    §3.1  factorised embedding parameterisation: tokens are embedded in E ≪ H dimensions, then projected,
          x = W_map · LayerNorm(E_token + E_position + E_segment),  V·E + E·H parameters instead of V·H
          (`encoder.embedding_hidden_mapping_in`); the MLM head projects back, logits = LN(act(W h)) E_tokenᵀ + b
    §3.1  cross-layer parameter sharing: the L layers apply `num_hidden_groups` groups of `inner_group_num`
          layers; layer i runs group ⌊i / (L / G)⌋, so G = 1 shares one group across all of depth
    §3.1  inter-sentence coherence: sentence-order prediction (SOP) — is segment B after A, or were the two
          consecutive segments swapped? — on the pooled [CLS] instead of NSP      → AlbertForPreTraining
Each layer is BERT's post-LN layer: h = LN(x + Dropout(Attention(x) W_O)); y = LN(h + W_2 act(W_1 h)) (the
reference has no dropout on the feed-forward output). Module attribute names are Hugging Face's
(`modeling_albert.py`), so `albert.encoder.albert_layer_groups.0.albert_layers.1.ffn.weight` is both a path here
and a checkpoint key.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax
import jax.numpy as jnp
from flax import nnx

from minibert import losses
from minibert.config import PretrainedConfig
from minibert.models.base import PreTrainedModel
from minibert.models.heads import select_masked
from minibert.models.outputs import ModelOutput
from minibert.nn.activations import activation
from minibert.nn.attention import MultiHeadSelfAttention, padding_mask
from minibert.nn.embeddings import Embeddings
from minibert.nn.linear import Linear
from minibert.nn.norms import LayerNorm
from minibert.nn.tied_decoder import TiedDecoder


@dataclasses.dataclass
class AlbertConfig(PretrainedConfig):
    """ALBERT with Hugging Face's names and defaults (albert-xxlarge: E 128, H 4096, 12 layers in one group)."""

    model_type: ClassVar[str] = "albert"

    vocab_size: int = 30000
    embedding_size: int = 128
    hidden_size: int = 4096
    num_hidden_layers: int = 12
    num_hidden_groups: int = 1
    num_attention_heads: int = 64
    intermediate_size: int = 16384
    inner_group_num: int = 1
    hidden_act: str = "gelu_new"
    hidden_dropout_prob: float = 0.0
    attention_probs_dropout_prob: float = 0.0
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    initializer_range: float = 0.02
    layer_norm_eps: float = 1e-12
    classifier_dropout_prob: float = 0.1
    pad_token_id: int = 0
    bos_token_id: int | None = 2
    eos_token_id: int | list[int] | None = 3
    tie_word_embeddings: bool = True

    @property
    def classifier_dropout(self) -> float:
        """The task heads' dropout, under the name the other families' configs give it."""
        return self.classifier_dropout_prob

    def validate(self) -> None:
        super().validate()
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(f"hidden_size {self.hidden_size} is not a multiple of num_attention_heads "
                             f"{self.num_attention_heads}")
        if not 1 <= self.num_hidden_groups <= self.num_hidden_layers:
            raise ValueError(f"num_hidden_groups {self.num_hidden_groups} must be between 1 and num_hidden_layers "
                             f"{self.num_hidden_layers}")


class AlbertAttention(MultiHeadSelfAttention):
    """h = LayerNorm(x + Dropout(MultiHead(x) W_O)): BERT's attention sublayer, its output projection (`dense`) and
    LayerNorm beside the query/key/value projections. (batch, seq, hidden) → (batch, seq, hidden)."""

    def __init__(self, config: AlbertConfig, *, dtype, rngs: nnx.Rngs):
        c = config
        super().__init__(c.hidden_size, c.num_attention_heads, dropout=c.attention_probs_dropout_prob,
                         init_std=c.initializer_range, dtype=dtype, rngs=rngs)
        self.dense = Linear(c.hidden_size, c.hidden_size, init_std=c.initializer_range, dtype=dtype, rngs=rngs)
        self.LayerNorm = LayerNorm(c.hidden_size, eps=c.layer_norm_eps, dtype=dtype)
        self.output_dropout = nnx.Dropout(c.hidden_dropout_prob, rngs=rngs)

    def __call__(self, x: jax.Array, mask: jax.Array) -> jax.Array:
        return self.LayerNorm(x + self.output_dropout(self.dense(super().__call__(x, mask))))


class AlbertLayer(nnx.Module):
    """h = attention(x); y = LN(h + W_2 act(W_1 h)) — `ffn`, `ffn_output`, `full_layer_layer_norm`."""

    def __init__(self, config: AlbertConfig, *, dtype, rngs: nnx.Rngs):
        c = config
        self.attention = AlbertAttention(c, dtype=dtype, rngs=rngs)
        self.ffn = Linear(c.hidden_size, c.intermediate_size, init_std=c.initializer_range, dtype=dtype, rngs=rngs)
        self.ffn_output = Linear(c.intermediate_size, c.hidden_size, init_std=c.initializer_range, dtype=dtype,
                                 rngs=rngs)
        self.activation = activation(c.hidden_act)
        self.full_layer_layer_norm = LayerNorm(c.hidden_size, eps=c.layer_norm_eps, dtype=dtype)

    def __call__(self, x: jax.Array, mask: jax.Array) -> jax.Array:
        h = self.attention(x, mask)
        return self.full_layer_layer_norm(h + self.ffn_output(self.activation(self.ffn(h))))


class AlbertLayerGroup(nnx.Module):
    """`inner_group_num` layers applied in order; every layer output is kept (the hidden states)."""

    def __init__(self, config: AlbertConfig, *, dtype, rngs: nnx.Rngs):
        self.albert_layers = nnx.List([AlbertLayer(config, dtype=dtype, rngs=rngs)
                                       for _ in range(config.inner_group_num)])

    def __call__(self, x: jax.Array, mask: jax.Array) -> list[jax.Array]:
        states = []
        for layer in self.albert_layers:
            x = layer(x, mask)
            states.append(x)
        return states


def layer_groups(num_hidden_layers: int, num_hidden_groups: int) -> list[int]:
    """The layer group each of the L layers runs, ⌊i / (L / G)⌋ for i = 0 … L − 1 (§3.1; the reference's float
    division: L = 5, G = 3 gives 0, 0, 1, 1, 2). G = 1 is the paper's all-shared ALBERT."""
    return [int(i / (num_hidden_layers / num_hidden_groups)) for i in range(num_hidden_layers)]


class AlbertTransformer(nnx.Module):
    """x = W_map e (E → H), then layer i of L runs group `layer_groups(L, G)[i]` (§3.1: the group's parameters
    applied again, not copies).
    Returns the last hidden state and every hidden state: W_map e, then each inner layer's output."""

    def __init__(self, config: AlbertConfig, *, dtype, rngs: nnx.Rngs):
        c = config
        self.groups = layer_groups(c.num_hidden_layers, c.num_hidden_groups)
        self.embedding_hidden_mapping_in = Linear(c.embedding_size, c.hidden_size, init_std=c.initializer_range,
                                                  dtype=dtype, rngs=rngs)
        self.albert_layer_groups = nnx.List([AlbertLayerGroup(c, dtype=dtype, rngs=rngs)
                                             for _ in range(c.num_hidden_groups)])

    def __call__(self, e: jax.Array, mask: jax.Array) -> tuple[jax.Array, tuple[jax.Array, ...]]:
        states = [self.embedding_hidden_mapping_in(e)]
        for group in self.groups:
            states += self.albert_layer_groups[group](states[-1], mask)
        return states[-1], tuple(states)


class AlbertModel(PreTrainedModel):
    """The bare encoder: (batch, seq) ids → last_hidden_state (batch, seq, hidden), pooler_output (batch, hidden)
    = tanh(W h_[CLS] + b) (with `add_pooling_layer`; the reference's `pooler` is the Linear itself)."""

    config_class = AlbertConfig
    is_base_model = True

    def __init__(self, config: AlbertConfig, *, add_pooling_layer: bool = True, dtype=jnp.float32,
                 rngs: nnx.Rngs | None = None):
        config.validate()
        rngs = rngs or nnx.Rngs(0)
        c = config
        self.config = config
        self.embeddings = Embeddings(vocab_size=c.vocab_size, embedding_size=c.embedding_size,
                                     max_position_embeddings=c.max_position_embeddings,
                                     type_vocab_size=c.type_vocab_size, layer_norm_eps=c.layer_norm_eps,
                                     dropout=c.hidden_dropout_prob, pad_token_id=c.pad_token_id,
                                     init_std=c.initializer_range, dtype=dtype, rngs=rngs)
        self.encoder = AlbertTransformer(c, dtype=dtype, rngs=rngs)
        self.pooler = Linear(c.hidden_size, c.hidden_size, init_std=c.initializer_range, dtype=dtype,
                             rngs=rngs) if add_pooling_layer else None

    def forward(self, input_ids, attention_mask, token_type_ids, *, output_hidden_states=False, inputs_embeds=None):
        last, states = self.encoder(self.embeddings(input_ids, token_type_ids, inputs_embeds),
                                    padding_mask(attention_mask))
        return ModelOutput(last_hidden_state=last,
                           pooler_output=None if self.pooler is None else jnp.tanh(self.pooler(last[:, 0])),
                           hidden_states=states if output_hidden_states else None)


class AlbertMLMHead(nnx.Module):
    """logits = LN(act(W h)) Eᵀ + b: back from H to E dimensions, then the token embeddings and `bias` when tied
    (the reference's `decoder` is then a tied copy, not saved), else the head's own `decoder` Linear (vocab, E),
    bias included (transformers ≥ 5 no longer reads `bias` then; it is kept so that both keys round-trip).
    (batch, seq, hidden) → (batch, seq, vocab)."""

    def __init__(self, config: AlbertConfig, *, dtype, rngs: nnx.Rngs):
        c = config
        self.dense = Linear(c.hidden_size, c.embedding_size, init_std=c.initializer_range, dtype=dtype, rngs=rngs)
        self.activation = activation(c.hidden_act)
        self.LayerNorm = LayerNorm(c.embedding_size, eps=c.layer_norm_eps, dtype=dtype)
        self.decoder = TiedDecoder(c.embedding_size, c.vocab_size, tied=c.tie_word_embeddings,
                                   use_bias=not c.tie_word_embeddings, init_std=c.initializer_range, dtype=dtype,
                                   rngs=rngs)
        self.bias = nnx.Param(jnp.zeros((c.vocab_size,), jnp.float32))

    def __call__(self, hidden: jax.Array, word_embeddings: jax.Array) -> jax.Array:
        h = self.LayerNorm(self.activation(self.dense(hidden)))                          # (batch, seq, E)
        logits = self.decoder(h, word_embeddings)
        return logits if self.decoder.bias is not None else logits + self.bias[...].astype(h.dtype)  # untied: its own


class AlbertSOPHead(nnx.Module):
    """Sentence-order logits (batch, 2) from the pooled [CLS]: class 0 = segments in order, 1 = swapped."""

    def __init__(self, config: AlbertConfig, *, dtype, rngs: nnx.Rngs):
        c = config
        self.dropout = nnx.Dropout(c.classifier_dropout_prob, rngs=rngs)
        self.classifier = Linear(c.hidden_size, 2, init_std=c.initializer_range, dtype=dtype, rngs=rngs)

    def __call__(self, pooled: jax.Array) -> jax.Array:
        return self.classifier(self.dropout(pooled))


class _AlbertWithHeads(PreTrainedModel):
    """ALBERT encoder (`albert`) + the MLM head (`predictions`); the SOP head (`sop_classifier`) when `sop` is set.
    Given `masked_positions` (batch, n), the MLM head runs there only (a sparse head)."""

    config_class = AlbertConfig
    base_model_prefix = "albert"
    ignored_checkpoint_keys = (r"^predictions\.decoder\.(weight|bias)$",)   # tied copies, when tied
    sop: ClassVar[bool]

    def __init__(self, config: AlbertConfig, *, dtype=jnp.float32, rngs: nnx.Rngs | None = None):
        rngs = rngs or nnx.Rngs(0)
        self.config = config
        self.albert = AlbertModel(config, add_pooling_layer=self.sop, dtype=dtype, rngs=rngs)
        self.predictions = AlbertMLMHead(config, dtype=dtype, rngs=rngs)
        self.sop_classifier = AlbertSOPHead(config, dtype=dtype, rngs=rngs) if self.sop else None

    def mlm(self, input_ids, attention_mask, token_type_ids, output_hidden_states, labels, masked_positions,
            inputs_embeds):
        out = self.albert.forward(input_ids, attention_mask, token_type_ids,
                                  output_hidden_states=output_hidden_states, inputs_embeds=inputs_embeds)
        scored = select_masked(out.last_hidden_state, masked_positions, labels)  # all positions, or the masked ones
        return out, self.predictions(scored, self.albert.embeddings.word_embeddings.weight[...])


class AlbertForMaskedLM(_AlbertWithHeads):
    """ALBERT with the MLM head: logits (batch, seq, vocab); loss = MLM cross-entropy given `labels` (-100 where
    nothing is predicted)."""

    sop = False

    def forward(self, input_ids, attention_mask, token_type_ids, *, output_hidden_states=False, labels=None,
                masked_positions=None, inputs_embeds=None):
        out, logits = self.mlm(input_ids, attention_mask, token_type_ids, output_hidden_states, labels,
                               masked_positions, inputs_embeds)
        return out.replace(logits=logits, loss=None if labels is None else losses.masked_lm_loss(logits, labels))


class AlbertForPreTraining(_AlbertWithHeads):
    """ALBERT with MLM and SOP heads: prediction_logits (batch, seq, vocab) (also `logits`), sop_logits (batch, 2);
    loss = MLM + SOP cross-entropy given `labels` and `sentence_order_label` (batch,) (0 = in order)."""

    sop = True

    def forward(self, input_ids, attention_mask, token_type_ids, *, output_hidden_states=False, labels=None,
                sentence_order_label=None, masked_positions=None, inputs_embeds=None):
        out, logits = self.mlm(input_ids, attention_mask, token_type_ids, output_hidden_states, labels,
                               masked_positions, inputs_embeds)
        sop_logits = self.sop_classifier(out.pooler_output)
        loss = losses.pretraining_loss(logits, labels, sop_logits, sentence_order_label)
        return out.replace(logits=logits, sop_logits=sop_logits, loss=loss)
