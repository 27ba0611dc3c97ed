"""ConvBERT: BERT whose self-attention shares its width with span-based dynamic convolution heads.

Jiang et al., "ConvBERT: Improving BERT with Span-based Dynamic Convolution" (NeurIPS 2020, arXiv 2008.02496).
    §3.2  span-based dynamic convolution, with a depthwise-separable conv for the span-aware key  → nn/dynamic_conv.py
    §3.3  mixed attention: num_attention_heads / head_ratio self-attention heads, each half as wide, beside as
          many convolution heads; the two halves are concatenated                          → ConvBertSelfAttention
    §3.4  grouped feed-forward: both FFN layers split into `num_groups` blocks             → nn/grouped_linear.py
    ELECTRA-style embeddings of width `embedding_size`, projected to `hidden_size` (`embeddings_project`) when
    they differ; the masked-LM head is ELECTRA's generator head (`generator_predictions`, `generator_lm_head`), reused.
Everything else is BERT (post-LN layers, the same embeddings), and is reused from models/bert.py.
Module attribute names are Hugging Face's, so `convbert.encoder.layer.0.attention.self.conv_kernel_layer.weight`
is both a path in this module tree and a key in a `transformers` checkpoint.
"""

import dataclasses
from typing import ClassVar

import jax
import jax.numpy as jnp
from flax import nnx

from minibert import losses
from minibert.config import BertConfig
from minibert.models.base import PreTrainedModel
from minibert.models.bert import BertAttention, BertEncoder, BertLayer
from minibert.models.electra import ElectraGeneratorPredictions
from minibert.models.heads import select_masked
from minibert.models.outputs import ModelOutput
from minibert.nn.activations import activation
from minibert.nn.attention import dot_product_attention, padding_bias
from minibert.nn.dynamic_conv import SeparableConv1D, span_based_dynamic_convolution
from minibert.nn.embeddings import EmbeddingProjection, Embeddings
from minibert.nn.feedforward import Intermediate, PostNormOutput
from minibert.nn.grouped_linear import GroupedLinear
from minibert.nn.linear import Linear
from minibert.nn.norms import LayerNorm
from minibert.nn.tied_decoder import TiedDecoder


@dataclasses.dataclass
class ConvBertConfig(BertConfig):
    """ConvBERT (Jiang et al., 2020): BERT's fields plus the embedding width and the mixed attention's; defaults are
    Hugging Face's (ConvBERT-base: H=768, 12 heads, γ=2, k=9)."""

    model_type: ClassVar[str] = "convbert"

    pad_token_id: int = 1
    embedding_size: int = 768
    head_ratio: int = 2
    conv_kernel_size: int = 9
    num_groups: int = 1

    @property
    def num_mixed_heads(self) -> int:
        """h = num_attention_heads / head_ratio (γ, §3.3), at least 1: the self-attention heads, and as many conv heads."""
        return max(1, self.num_attention_heads // self.head_ratio)

    @property
    def mixed_head_size(self) -> int:
        """Each head's width: half of hidden_size / h, so that h attention + h conv heads fill hidden_size."""
        return self.hidden_size // self.num_mixed_heads // 2

    def validate(self) -> None:
        super().validate()
        if self.head_ratio < 1:
            raise ValueError(f"head_ratio must be ≥ 1, got {self.head_ratio}")
        heads = self.num_mixed_heads
        if self.hidden_size % (2 * heads):
            raise ValueError(f"hidden_size {self.hidden_size} must be a multiple of 2 × {heads} heads "
                             f"(num_attention_heads {self.num_attention_heads} // head_ratio {self.head_ratio}): "
                             "half of each head's width is attention, half is convolution")
        if self.conv_kernel_size < 1 or self.conv_kernel_size % 2 == 0:
            raise ValueError(f"conv_kernel_size must be a positive odd number (the span is centred on its token), "
                             f"got {self.conv_kernel_size}")
        if self.num_groups < 1 or self.hidden_size % self.num_groups or self.intermediate_size % self.num_groups:
            raise ValueError(f"hidden_size {self.hidden_size} and intermediate_size {self.intermediate_size} must be "
                             f"multiples of num_groups {self.num_groups}")


class ConvBertSelfAttention(nnx.Module):
    """Mixed attention (§3.3): Cat(SelfAttention(Q, K, V), SDConv(Q, K_s, V')) over h heads of width d each.

    (batch, seq, hidden) → (batch, seq, 2·h·d = hidden): the h attention heads, then the h convolution heads,
    before the output projection (`attention.output`). The convolution half ignores the padding mask."""

    def __init__(self, config: ConvBertConfig, *, dtype, rngs: nnx.Rngs):
        c = config
        self.num_heads = c.num_mixed_heads
        self.record_attention = False
        width = self.num_heads * c.mixed_head_size
        layer = dict(init_std=c.initializer_range, dtype=dtype, rngs=rngs)
        self.query = Linear(c.hidden_size, width, **layer)
        self.key = Linear(c.hidden_size, width, **layer)
        self.value = Linear(c.hidden_size, width, **layer)
        self.key_conv_attn_layer = SeparableConv1D(c.hidden_size, width, c.conv_kernel_size, **layer)  # K_s
        self.conv_kernel_layer = Linear(width, self.num_heads * c.conv_kernel_size, **layer)            # W_f
        self.conv_out_layer = Linear(c.hidden_size, width, **layer)                                     # V'
        self.dropout = nnx.Dropout(c.attention_probs_dropout_prob, rngs=rngs)

    def __call__(self, x: jax.Array, bias: jax.Array) -> jax.Array:
        heads = lambda t: t.reshape(*t.shape[:-1], self.num_heads, -1)  # (b, s, h·d) → (b, s, h, d)
        query = self.query(x)
        attention = dot_product_attention(heads(query), heads(self.key(x)), heads(self.value(x)), bias, self.dropout,
                                          recorder=self)
        conv = span_based_dynamic_convolution(query, self.key_conv_attn_layer(x), heads(self.conv_out_layer(x)),
                                              self.conv_kernel_layer)
        return jnp.concatenate([attention, conv], axis=2).reshape(*x.shape[:-1], -1)


class ConvBertAttention(BertAttention):
    """BERT's post-LN attention sublayer around mixed attention: LayerNorm(x + Dropout(Mixed(x) W_O))."""

    def __init__(self, config: ConvBertConfig, *, dtype, rngs: nnx.Rngs):
        c = config
        self.self = ConvBertSelfAttention(c, dtype=dtype, rngs=rngs)
        self.output = PostNormOutput(c.hidden_size, c.hidden_size, eps=c.layer_norm_eps, dropout=c.hidden_dropout_prob,
                                     init_std=c.initializer_range, dtype=dtype, rngs=rngs)


def _feed_forward_dense(in_features: int, out_features: int, config: ConvBertConfig, *, dtype, rngs: nnx.Rngs):
    """A dense layer, or a grouped one (§3.4) when num_groups > 1, as Hugging Face chooses."""
    if config.num_groups == 1:
        return Linear(in_features, out_features, init_std=config.initializer_range, dtype=dtype, rngs=rngs)
    return GroupedLinear(in_features, out_features, config.num_groups, init_std=config.initializer_range,
                         dtype=dtype, rngs=rngs)


class ConvBertIntermediate(Intermediate):
    """act(GL(x)): the FFN's first layer, grouped (§3.4). (batch, seq, hidden) → (batch, seq, intermediate)."""

    def __init__(self, config: ConvBertConfig, *, dtype, rngs: nnx.Rngs):
        self.dense = _feed_forward_dense(config.hidden_size, config.intermediate_size, config, dtype=dtype, rngs=rngs)
        self.act = activation(config.hidden_act)


class ConvBertOutput(PostNormOutput):
    """LayerNorm(residual + Dropout(GL(h))): the FFN's second layer, grouped (§3.4), and the post-LN residual."""

    def __init__(self, config: ConvBertConfig, *, dtype, rngs: nnx.Rngs):
        c = config
        self.dense = _feed_forward_dense(c.intermediate_size, c.hidden_size, c, dtype=dtype, rngs=rngs)
        self.LayerNorm = LayerNorm(c.hidden_size, eps=c.layer_norm_eps, dtype=dtype)
        self.dropout = nnx.Dropout(c.hidden_dropout_prob, rngs=rngs)


class ConvBertLayer(BertLayer):
    """One post-LN encoder layer, as BERT's: mixed-attention sublayer, then grouped feed-forward sublayer."""

    def __init__(self, config: ConvBertConfig, *, dtype, rngs: nnx.Rngs):
        self.attention = ConvBertAttention(config, dtype=dtype, rngs=rngs)
        self.intermediate = ConvBertIntermediate(config, dtype=dtype, rngs=rngs)
        self.output = ConvBertOutput(config, dtype=dtype, rngs=rngs)


class ConvBertEncoder(BertEncoder):
    """A stack of `num_hidden_layers` ConvBERT layers; returns the last hidden state and every layer's output."""

    def __init__(self, config: ConvBertConfig, *, dtype, rngs: nnx.Rngs):
        self.layer = nnx.List([ConvBertLayer(config, dtype=dtype, rngs=rngs) for _ in range(config.num_hidden_layers)])


class ConvBertModel(PreTrainedModel):
    """The bare encoder: (batch, seq) ids → last_hidden_state (batch, seq, hidden). No pooler.

    hidden_states[0] is the embeddings after `embeddings_project` (hidden wide), as in Hugging Face."""

    config_class = ConvBertConfig
    is_base_model = True

    def __init__(self, config: ConvBertConfig, *, dtype=jnp.float32, rngs: nnx.Rngs | None = None):
        config.validate()
        rngs = rngs or nnx.Rngs(0)
        c = config
        self.config = config
        self.embeddings = Embeddings(vocab_size=c.vocab_size, embedding_size=c.embedding_size,
                                     max_position_embeddings=c.max_position_embeddings,
                                     type_vocab_size=c.type_vocab_size, layer_norm_eps=c.layer_norm_eps,
                                     dropout=c.hidden_dropout_prob, pad_token_id=c.pad_token_id,
                                     init_std=c.initializer_range, dtype=dtype, rngs=rngs)
        self.embeddings_project = EmbeddingProjection(c.embedding_size, c.hidden_size, init_std=c.initializer_range,
                                                      dtype=dtype, rngs=rngs)
        self.encoder = ConvBertEncoder(c, dtype=dtype, rngs=rngs)

    def forward(self, input_ids, attention_mask, token_type_ids, *, output_hidden_states=False, inputs_embeds=None):
        x = self.embeddings_project(self.embeddings(input_ids, token_type_ids, inputs_embeds))  # (batch, seq, hidden)
        last, states = self.encoder(x, padding_bias(attention_mask))
        return ModelOutput(last_hidden_state=last, hidden_states=states if output_hidden_states else None)


class ConvBertForMaskedLM(PreTrainedModel):
    """ConvBERT with the generator's masked-LM head: logits (batch, seq, vocab); loss = MLM cross-entropy
    given `labels` (-100 where nothing is predicted). Given `masked_positions` (batch, n), the head runs there
    only: logits (batch, n, vocab), `labels` (batch, n)."""

    config_class = ConvBertConfig
    base_model_prefix = "convbert"
    ignored_checkpoint_keys = (r"^generator_lm_head\.weight$",)  # the tied copy, when tied

    def __init__(self, config: ConvBertConfig, *, dtype=jnp.float32, rngs: nnx.Rngs | None = None):
        rngs = rngs or nnx.Rngs(0)
        c = config
        self.config = config
        self.convbert = ConvBertModel(c, dtype=dtype, rngs=rngs)
        self.generator_predictions = ElectraGeneratorPredictions(c, dtype=dtype, rngs=rngs)
        self.generator_lm_head = TiedDecoder(c.embedding_size, c.vocab_size, tied=c.tie_word_embeddings,
                                             init_std=c.initializer_range, dtype=dtype, rngs=rngs)

    def forward(self, input_ids, attention_mask, token_type_ids, *, output_hidden_states=False, labels=None,
                masked_positions=None, inputs_embeds=None):
        out = self.convbert.forward(input_ids, attention_mask, token_type_ids, output_hidden_states=output_hidden_states,
                                    inputs_embeds=inputs_embeds)
        scored = select_masked(out.last_hidden_state, masked_positions, labels)  # all positions, or the masked ones
        logits = self.generator_lm_head(self.generator_predictions(scored),
                                        self.convbert.embeddings.word_embeddings.weight[...])
        loss = None if labels is None else losses.masked_lm_loss(logits, labels)
        return out.replace(logits=logits, loss=loss)
