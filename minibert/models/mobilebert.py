"""MobileBERT: a deep, thin BERT with bottlenecks, stacked FFNs and NoNorm, for resource-limited devices.

Sun et al., "MobileBERT: a Compact Task-Agnostic BERT for Resource-Limited Devices" (2020), arXiv 2004.02984.
    §3.4  embeddings: narrow table, trigram (kernel-3 conv) widened to `hidden_size`   → nn/bottleneck.py
    §3.1  each of the L blocks: input bottleneck hidden → true_hidden (queries/keys from a shared bottleneck),
          attention at the intra-block width, output bottleneck true_hidden → hidden   → nn/bottleneck.py
    §3.2  `num_feedforward_networks` stacked FFNs per block (the last one closes the block)
    §3.3  NoNorm (γ ∘ h + β) instead of LayerNorm, ReLU instead of GELU                 → nn/norms.py
Published setting (Table 1): hidden 512, intra-block 128, embedding 128, 24 layers, 4 heads, 4 FFNs.
Heads: the MLM decoder is [word embeddingsᵀ; extra dense] so it reaches the full width (below); NSP as in BERT.
Module attribute names are Hugging Face's (`mobilebert.encoder.layer.3.bottleneck.attention.dense.weight`).
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
from flax import nnx

from minibert import losses
from minibert.config import PretrainedConfig
from minibert.models.base import PreTrainedModel
from minibert.models.heads import Pooler, PredictionHeadTransform, select_masked
from minibert.models.outputs import ModelOutput
from minibert.models.task_heads import NextSentencePrediction
from minibert.nn.attention import padding_mask
from minibert.nn.bottleneck import (Bottleneck, BottleneckOutput, BottleneckSelfAttention, FactorizedEmbeddings,
                                    ResidualProjection)
from minibert.nn.feedforward import Intermediate
from minibert.nn.linear import Linear
from minibert.nn.tied_decoder import TiedDecoder

# The reference builds the embedding norm and each block's FFN-output norm without passing `eps`: under
# normalization_type="layer_norm" they use torch's default 1e-5, every other norm `layer_norm_eps`.
TORCH_DEFAULT_EPS = 1e-5
NORMALIZATION_TYPES = ("no_norm", "layer_norm")


@dataclasses.dataclass
class MobileBertConfig(PretrainedConfig):
    """MobileBERT; defaults are the published model (google/mobilebert-uncased), HF names and defaults.

    `true_hidden_size` (the intra-block width) is derived, as in `transformers`: `intra_bottleneck_size`
    with `use_bottleneck`, else `hidden_size`; it is written to config.json but never read from it."""

    model_type: ClassVar[str] = "mobilebert"

    vocab_size: int = 30522
    hidden_size: int = 512
    num_hidden_layers: int = 24
    num_attention_heads: int = 4
    intermediate_size: int = 512
    hidden_act: str = "relu"
    hidden_dropout_prob: float = 0.0
    attention_probs_dropout_prob: float = 0.1
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    initializer_range: float = 0.02
    layer_norm_eps: float = 1e-12
    pad_token_id: int | None = 0
    embedding_size: int = 128
    trigram_input: bool = True
    use_bottleneck: bool = True
    intra_bottleneck_size: int = 128
    use_bottleneck_attention: bool = False
    key_query_shared_bottleneck: bool = True
    num_feedforward_networks: int = 4
    normalization_type: str = "no_norm"
    classifier_activation: bool = True
    classifier_dropout: float | None = None   # the task heads' dropout; None: hidden_dropout_prob
    tie_word_embeddings: bool = True

    @property
    def true_hidden_size(self) -> int:
        return self.intra_bottleneck_size if self.use_bottleneck else self.hidden_size

    @classmethod
    def from_dict(cls, values):
        """config.json's `true_hidden_size` is derived (see the class docstring): not read."""
        return super().from_dict({k: v for k, v in values.items() if k != "true_hidden_size"})

    def validate(self) -> None:
        super().validate()
        if self.normalization_type not in NORMALIZATION_TYPES:
            raise ValueError(f"normalization_type {self.normalization_type!r} is not one of {NORMALIZATION_TYPES}")
        if self.true_hidden_size % self.num_attention_heads:
            raise ValueError(f"the attention width (true_hidden_size {self.true_hidden_size}) is not a multiple of "
                             f"num_attention_heads {self.num_attention_heads}")
        if self.num_feedforward_networks < 1:
            raise ValueError(f"num_feedforward_networks must be at least 1, got {self.num_feedforward_networks}")
        if (self.use_bottleneck and not self.use_bottleneck_attention and not self.key_query_shared_bottleneck
                and self.hidden_size != self.intra_bottleneck_size):
            raise ValueError("with use_bottleneck but neither use_bottleneck_attention nor "
                             "key_query_shared_bottleneck, queries and keys are computed from the hidden_size-wide "
                             "input by intra_bottleneck_size-wide projections: hidden_size "
                             f"({self.hidden_size}) must equal intra_bottleneck_size ({self.intra_bottleneck_size})")

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "true_hidden_size": self.true_hidden_size}


def _norm_options(c: MobileBertConfig, dtype, rngs: nnx.Rngs) -> dict:
    return dict(normalization_type=c.normalization_type, init_std=c.initializer_range, dtype=dtype, rngs=rngs)


class MobileBertAttention(nnx.Module):
    """norm(residual + MultiHead(query_key, value) W_O): the attention sublayer at the intra-block width."""

    def __init__(self, config: MobileBertConfig, *, dtype, rngs: nnx.Rngs):
        c = config
        value_size = c.true_hidden_size if c.use_bottleneck_attention else c.hidden_size
        self.self = BottleneckSelfAttention(c.true_hidden_size, value_size, c.num_attention_heads,
                                            dropout=c.attention_probs_dropout_prob, init_std=c.initializer_range,
                                            dtype=dtype, rngs=rngs)
        self.output = ResidualProjection(c.true_hidden_size, c.true_hidden_size, eps=c.layer_norm_eps,
                                         dropout=0.0 if c.use_bottleneck else c.hidden_dropout_prob,
                                         **_norm_options(c, dtype, rngs))

    def __call__(self, query_key: jax.Array, value: jax.Array, residual: jax.Array, mask: jax.Array) -> jax.Array:
        return self.output(self.self(query_key, value, mask), residual)


class FFNLayer(nnx.Module):
    """One of the stacked FFNs (§3.2): norm(h + act(h W₁ + b₁) W₂ + b₂), (batch, seq, true_hidden)."""

    def __init__(self, config: MobileBertConfig, *, dtype, rngs: nnx.Rngs):
        c = config
        self.intermediate = Intermediate(c.true_hidden_size, c.intermediate_size, c.hidden_act,
                                         init_std=c.initializer_range, dtype=dtype, rngs=rngs)
        self.output = ResidualProjection(c.intermediate_size, c.true_hidden_size, eps=c.layer_norm_eps, dropout=0.0,
                                         **_norm_options(c, dtype, rngs))

    def __call__(self, h: jax.Array) -> jax.Array:
        return self.output(self.intermediate(h), h)


class MobileBertLayer(nnx.Module):
    """One block (Figure 1c): bottleneck in, attention, F−1 stacked FFNs, the last FFN, bottleneck out.

    (batch, seq, hidden) → (batch, seq, hidden); inside, (batch, seq, true_hidden)."""

    def __init__(self, config: MobileBertConfig, *, dtype, rngs: nnx.Rngs):
        c = config
        self.bottleneck = Bottleneck(c.hidden_size, c.intra_bottleneck_size,
                                     use_bottleneck_attention=c.use_bottleneck_attention,
                                     key_query_shared_bottleneck=c.key_query_shared_bottleneck, eps=c.layer_norm_eps,
                                     **_norm_options(c, dtype, rngs)) if c.use_bottleneck else None
        self.attention = MobileBertAttention(c, dtype=dtype, rngs=rngs)
        self.ffn = nnx.List([FFNLayer(c, dtype=dtype, rngs=rngs) for _ in range(c.num_feedforward_networks - 1)])
        self.intermediate = Intermediate(c.true_hidden_size, c.intermediate_size, c.hidden_act,
                                         init_std=c.initializer_range, dtype=dtype, rngs=rngs)
        self.output = BottleneckOutput(c.intermediate_size, c.true_hidden_size,
                                       bottleneck_out=c.hidden_size if c.use_bottleneck else None,
                                       eps=TORCH_DEFAULT_EPS, bottleneck_eps=c.layer_norm_eps,
                                       dropout=c.hidden_dropout_prob, **_norm_options(c, dtype, rngs))

    def __call__(self, x: jax.Array, mask: jax.Array) -> jax.Array:
        query_key, value, residual = self.bottleneck(x) if self.bottleneck is not None else (x, x, x)
        h = self.attention(query_key, value, residual, mask)
        for ffn in self.ffn:
            h = ffn(h)
        return self.output(self.intermediate(h), h, x)


class MobileBertEncoder(nnx.Module):
    """`num_hidden_layers` blocks; returns the last hidden state and every block's output."""

    def __init__(self, config: MobileBertConfig, *, dtype, rngs: nnx.Rngs):
        self.layer = nnx.List([MobileBertLayer(config, dtype=dtype, rngs=rngs)
                               for _ in range(config.num_hidden_layers)])

    def __call__(self, x: jax.Array, mask: jax.Array) -> tuple[jax.Array, tuple[jax.Array, ...]]:
        states = [x]
        for layer in self.layer:
            x = layer(x, mask)
            states.append(x)
        return x, tuple(states)


class MobileBertModel(PreTrainedModel):
    """The bare encoder: ids (batch, seq) → last_hidden_state (batch, seq, hidden), pooler_output (batch, hidden).

    The pooler is tanh(W h_[CLS] + b) with `classifier_activation` (no weights otherwise: h_[CLS] itself)."""

    config_class = MobileBertConfig
    is_base_model = True

    def __init__(self, config: MobileBertConfig, *, add_pooling_layer: bool = True, dtype=jnp.float32,
                 rngs: nnx.Rngs | None = None):
        config.validate()
        rngs = rngs or nnx.Rngs(0)
        c = config
        self.config = config
        self.embeddings = FactorizedEmbeddings(
            vocab_size=c.vocab_size, embedding_size=c.embedding_size, hidden_size=c.hidden_size,
            max_position_embeddings=c.max_position_embeddings, type_vocab_size=c.type_vocab_size,
            trigram_input=c.trigram_input, eps=TORCH_DEFAULT_EPS, dropout=c.hidden_dropout_prob,
            pad_token_id=c.pad_token_id,
            **_norm_options(c, dtype, rngs))
        self.encoder = MobileBertEncoder(c, dtype=dtype, rngs=rngs)
        self.add_pooling_layer = add_pooling_layer
        self.pooler = (Pooler(c.hidden_size, init_std=c.initializer_range, dtype=dtype, rngs=rngs)
                       if add_pooling_layer and c.classifier_activation else None)

    def forward(self, input_ids, attention_mask, token_type_ids, *, output_hidden_states=False, inputs_embeds=None):
        x = self.embeddings(input_ids, token_type_ids, inputs_embeds)
        last, states = self.encoder(x, padding_mask(attention_mask))
        pooled = None
        if self.add_pooling_layer:
            pooled = last[:, 0] if self.pooler is None else self.pooler(last)
        return ModelOutput(last_hidden_state=last, pooler_output=pooled,
                           hidden_states=states if output_hidden_states else None)


class MobileBertLMPredictionHead(nnx.Module):
    """logits = transform(h) [Eᵀ; D] + b = h_{:E} Eᵀ + h_{E:} D + b: (batch, seq, hidden) → (batch, seq, vocab).

    E is the (vocab, embedding_size) word-embedding matrix (or, untied, `decoder.weight`), applied by a
    `TiedDecoder` to the first embedding_size features; D is `dense.weight`, (hidden − embedding_size, vocab), used
    *untransposed* exactly as the reference stores it, on the other features, so the decoder reaches all `hidden`
    features though the table is narrower. The bias is `bias` when tied, `decoder.bias` when untied (the reference
    then leaves `bias` unused; it is kept so checkpoints fit)."""

    def __init__(self, config: MobileBertConfig, *, dtype, rngs: nnx.Rngs):
        c = config
        extra = c.hidden_size - c.embedding_size
        if extra < 0:
            raise ValueError(f"the MLM head needs hidden_size ({c.hidden_size}) >= embedding_size ({c.embedding_size})")
        linear = dict(init_std=c.initializer_range, dtype=dtype, rngs=rngs)
        self.transform = PredictionHeadTransform(c.hidden_size, c.hidden_act, eps=c.layer_norm_eps, **linear)
        self.dense = Linear(c.vocab_size, extra, use_bias=False, **linear)  # only its weight is used, as a matrix
        self.decoder = TiedDecoder(c.embedding_size, c.vocab_size, tied=c.tie_word_embeddings,
                                   use_bias=not c.tie_word_embeddings, **linear)
        self.bias = nnx.Param(jnp.zeros((c.vocab_size,), jnp.float32))
        self.embedding_size = c.embedding_size

    def __call__(self, hidden: jax.Array, word_embeddings: jax.Array) -> jax.Array:
        h = self.transform(hidden)
        e = self.embedding_size
        logits = self.decoder(h[..., :e], word_embeddings) + h[..., e:] @ self.dense.weight[...].astype(h.dtype)
        return logits if self.decoder.bias is not None else logits + self.bias[...].astype(h.dtype)  # untied: its own


class MobileBertPreTrainingHeads(nnx.Module):
    """The MLM head (`predictions`) and, optionally, the NSP classifier (`seq_relationship`, 2 classes)."""

    def __init__(self, config: MobileBertConfig, *, nsp: bool, dtype, rngs: nnx.Rngs):
        c = config
        self.predictions = MobileBertLMPredictionHead(c, dtype=dtype, rngs=rngs)
        self.seq_relationship = (Linear(c.hidden_size, 2, init_std=c.initializer_range, dtype=dtype, rngs=rngs)
                                 if nsp else None)


class _MobileBertWithHeads(PreTrainedModel):
    """MobileBERT encoder (`mobilebert`) + pretraining heads (`cls`); the NSP head only when `nsp` is set."""

    config_class = MobileBertConfig
    base_model_prefix = "mobilebert"
    # tied copies the reference may write (older versions did): the word embeddings and the MLM bias
    ignored_checkpoint_keys = (r"^cls\.predictions\.decoder\.(weight|bias)$",)
    nsp: bool

    def __init__(self, config: MobileBertConfig, *, dtype=jnp.float32, rngs: nnx.Rngs | None = None):
        rngs = rngs or nnx.Rngs(0)
        self.config = config
        self.mobilebert = MobileBertModel(config, add_pooling_layer=self.nsp, dtype=dtype, rngs=rngs)
        self.cls = MobileBertPreTrainingHeads(config, nsp=self.nsp, dtype=dtype, rngs=rngs)

    def forward(self, input_ids, attention_mask, token_type_ids, *, output_hidden_states=False, labels=None,
                next_sentence_label=None, masked_positions=None, inputs_embeds=None):
        out = self.mobilebert.forward(input_ids, attention_mask, token_type_ids,
                                      output_hidden_states=output_hidden_states, inputs_embeds=inputs_embeds)
        scored = select_masked(out.last_hidden_state, masked_positions, labels)  # all positions, or the masked ones
        logits = self.cls.predictions(scored, self.mobilebert.embeddings.word_embeddings.weight[...])
        nsp_logits = self.cls.seq_relationship(out.pooler_output) if self.nsp else None
        loss = losses.pretraining_loss(logits, labels, nsp_logits, next_sentence_label)
        return out.replace(logits=logits, seq_relationship_logits=nsp_logits, loss=loss)


class MobileBertForMaskedLM(_MobileBertWithHeads):
    """MobileBERT with the masked-LM head: logits (batch, seq, vocab); loss = MLM cross-entropy given `labels`.
    Given `masked_positions` (batch, n), the head runs there only: logits (batch, n, vocab), `labels` (batch, n)."""

    nsp = False


class MobileBertForPreTraining(_MobileBertWithHeads):
    """MobileBERT with MLM and NSP heads: prediction_logits (batch, seq, vocab) (also `logits`),
    seq_relationship_logits (batch, 2); loss = MLM + NSP given `labels` and `next_sentence_label`."""

    nsp = True


class MobileBertForNextSentencePrediction(NextSentencePrediction):
    """MobileBERT with the NSP head only: logits (batch, 2) = `cls.seq_relationship`(pooler_output), class 0 =
    "B follows A"; loss = cross-entropy given `labels` (batch,)."""

    config_class, base_model_prefix, backbone = MobileBertConfig, "mobilebert", MobileBertModel
