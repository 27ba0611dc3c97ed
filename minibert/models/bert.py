"""BERT: a post-LN Transformer encoder pretrained with masked LM and next sentence prediction.

Devlin et al., "BERT: Pre-training of Deep Bidirectional Transformers for Language Understanding" (2019).
    §3.2  input = LayerNorm(token + position + segment embeddings)          → nn/embeddings.py
    §3    L layers of: h = LN(x + MultiHeadAttention(x)); out = LN(h + FFN(h))  → nn/attention.py, nn/feedforward.py
    §3.1  heads: masked LM (tied to the token embeddings) and NSP on the pooled [CLS]  → models/heads.py
          (BertForMaskedLM, BertForPreTraining; BertForNextSentencePrediction has the NSP head alone)
Module attribute names are Hugging Face's, so `bert.encoder.layer.3.attention.self.query.weight` is both
a path in this module tree and a key in a `transformers` checkpoint.
"""

import jax
import jax.numpy as jnp
from flax import nnx

from minibert import losses
from minibert.config import BertConfig
from minibert.models.base import PreTrainedModel
from minibert.models.heads import Pooler, PreTrainingHeads, select_masked
from minibert.models.outputs import ModelOutput
from minibert.models.task_heads import NextSentencePrediction
from minibert.nn.attention import MultiHeadSelfAttention, padding_mask
from minibert.nn.embeddings import Embeddings
from minibert.nn.feedforward import Intermediate, PostNormOutput


class BertAttention(nnx.Module):
    """h = LayerNorm(x + Dropout(MultiHead(x) W_O)): (batch, seq, hidden) → (batch, seq, hidden)."""

    def __init__(self, config: BertConfig, *, dtype, rngs: nnx.Rngs):
        c = config
        self.self = MultiHeadSelfAttention(c.hidden_size, c.num_attention_heads, dropout=c.attention_probs_dropout_prob,
                                           init_std=c.initializer_range, dtype=dtype, rngs=rngs)
        self.output = PostNormOutput(c.hidden_size, c.hidden_size, eps=c.layer_norm_eps, dropout=c.hidden_dropout_prob,
                                     init_std=c.initializer_range, dtype=dtype, rngs=rngs)

    def __call__(self, x: jax.Array, mask: jax.Array) -> jax.Array:
        return self.output(self.self(x, mask), x)


class BertLayer(nnx.Module):
    """One post-LN encoder layer: attention sublayer, then feed-forward sublayer."""

    def __init__(self, config: BertConfig, *, dtype, rngs: nnx.Rngs):
        c = config
        self.attention = BertAttention(c, dtype=dtype, rngs=rngs)
        self.intermediate = Intermediate(c.hidden_size, c.intermediate_size, c.hidden_act,
                                         init_std=c.initializer_range, dtype=dtype, rngs=rngs)
        self.output = PostNormOutput(c.intermediate_size, c.hidden_size, eps=c.layer_norm_eps,
                                     dropout=c.hidden_dropout_prob, init_std=c.initializer_range, dtype=dtype, rngs=rngs)

    def __call__(self, x: jax.Array, mask: jax.Array) -> jax.Array:
        h = self.attention(x, mask)
        return self.output(self.intermediate(h), h)


class BertEncoder(nnx.Module):
    """A stack of `num_hidden_layers` layers; returns the last hidden state and every layer's output."""

    def __init__(self, config: BertConfig, *, dtype, rngs: nnx.Rngs):
        self.layer = nnx.List([BertLayer(config, dtype=dtype, rngs=rngs) for _ in range(config.num_hidden_layers)])

    def __call__(self, x: jax.Array, mask: jax.Array) -> tuple[jax.Array, tuple[jax.Array, ...]]:
        states = [x]
        for layer in self.layer:
            x = layer(x, mask)
            states.append(x)
        return x, tuple(states)


class BertModel(PreTrainedModel):
    """The bare encoder: (batch, seq) ids → last_hidden_state (batch, seq, hidden), pooler_output (batch, hidden)."""

    config_class = BertConfig
    is_base_model = True
    embeddings_class = Embeddings   # RoBERTa's counts positions from padding_idx + 1 (models/roberta.py)

    def __init__(self, config: BertConfig, *, add_pooling_layer: bool = True, dtype=jnp.float32,
                 rngs: nnx.Rngs | None = None):
        config.validate()
        rngs = rngs or nnx.Rngs(0)
        c = config
        self.config = config
        self.embeddings = self.embeddings_class(vocab_size=c.vocab_size, embedding_size=c.hidden_size,
                                                max_position_embeddings=c.max_position_embeddings,
                                                type_vocab_size=c.type_vocab_size, layer_norm_eps=c.layer_norm_eps,
                                                dropout=c.hidden_dropout_prob, pad_token_id=c.pad_token_id,
                                                init_std=c.initializer_range, dtype=dtype, rngs=rngs)
        self.encoder = BertEncoder(c, dtype=dtype, rngs=rngs)
        self.pooler = Pooler(c.hidden_size, init_std=c.initializer_range, dtype=dtype, rngs=rngs) if add_pooling_layer else None

    def forward(self, input_ids, attention_mask, token_type_ids, *, output_hidden_states=False, inputs_embeds=None):
        x = self.embeddings(input_ids, token_type_ids, inputs_embeds)
        last, states = self.encoder(x, padding_mask(attention_mask))
        return ModelOutput(last_hidden_state=last,
                           pooler_output=None if self.pooler is None else self.pooler(last),
                           hidden_states=states if output_hidden_states else None)


class _BertWithHeads(PreTrainedModel):
    """BERT encoder (`bert`) + pretraining heads (`cls`); the NSP head only when `nsp` is set."""

    config_class = BertConfig
    base_model_prefix = "bert"
    ignored_checkpoint_keys = (r"^cls\.predictions\.decoder\.(weight|bias)$",)
    nsp: bool

    def __init__(self, config: BertConfig, *, dtype=jnp.float32, rngs: nnx.Rngs | None = None):
        rngs = rngs or nnx.Rngs(0)
        c = config
        self.config = config
        self.bert = BertModel(c, add_pooling_layer=self.nsp, dtype=dtype, rngs=rngs)
        self.cls = PreTrainingHeads(c.hidden_size, c.vocab_size, c.hidden_act, eps=c.layer_norm_eps,
                                    tied=c.tie_word_embeddings, nsp=self.nsp, init_std=c.initializer_range,
                                    dtype=dtype, rngs=rngs)

    def forward(self, input_ids, attention_mask, token_type_ids, *, output_hidden_states=False, labels=None,
                next_sentence_label=None, masked_positions=None, inputs_embeds=None):
        out = self.bert.forward(input_ids, attention_mask, token_type_ids, output_hidden_states=output_hidden_states,
                                inputs_embeds=inputs_embeds)
        scored = select_masked(out.last_hidden_state, masked_positions, labels)  # all positions, or the masked ones
        logits = self.cls.predictions(scored, self.bert.embeddings.word_embeddings.weight[...])
        nsp_logits = self.cls.seq_relationship(out.pooler_output) if self.nsp else None
        loss = losses.pretraining_loss(logits, labels, nsp_logits, next_sentence_label)
        return out.replace(logits=logits, seq_relationship_logits=nsp_logits, loss=loss)


class BertForMaskedLM(_BertWithHeads):
    """BERT with the masked-LM head: logits (batch, seq, vocab); loss = MLM cross-entropy given `labels`.
    Given `masked_positions` (batch, n), the head runs there only (sparse head): logits (batch, n, vocab),
    `labels` (batch, n)."""

    nsp = False


class BertForPreTraining(_BertWithHeads):
    """BERT with MLM and NSP heads: prediction_logits (batch, seq, vocab) (also `logits`), seq_relationship_logits
    (batch, 2); loss = MLM + NSP given `labels` and `next_sentence_label`; sparse MLM head given
    `masked_positions`, as `BertForMaskedLM`."""

    nsp = True


class BertForNextSentencePrediction(NextSentencePrediction):
    """BERT with the NSP head only (§3.1, task #2): logits (batch, 2), class 0 = "B follows A";
    loss = cross-entropy given `labels` (batch,)."""

    config_class, base_model_prefix, backbone = BertConfig, "bert", BertModel
