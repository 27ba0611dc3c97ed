"""RoBERTa: BERT's encoder, pretrained better — longer, on more data, in bigger batches, without NSP.

Liu et al., "RoBERTa: A Robustly Optimized BERT Pretraining Approach" (2019), arXiv 1907.11692.
    §2–3   the model is BERT's (post-LN Transformer, MLM head tied to the token embeddings)  → models/bert.py
    §4.1   dynamic masking: a new mask each time a sequence is seen             → training/data.py `Batches`
    §4.2   FULL-SENTENCES inputs (documents packed, an extra </s> between them), no NSP loss
                                                                                 → training/data.py `PackedRows`
    §4.3   large batches (8K sequences), §4.4 byte-level BPE (50K units)        → presets.py, the tokenizer
Two details come from fairseq, and transformers' `modeling_roberta.py` keeps them:
    positions start at padding_idx + 1: p_i = m_i · Σ_{j≤i} m_j + padding_idx, m = [x ≠ pad]
        (pads stay at padding_idx), so `max_position_embeddings` = longest input + padding_idx + 1 (514 for 512)
                                                                                 → nn/embeddings.py
    the MLM head is `lm_head`: logits = layer_norm(gelu(dense(h))) Eᵀ + bias    (RobertaLMHead, below)
The fine-tuning heads (classification on <s> with a tanh hidden layer, tokens, spans, multiple choice on the
pooler) are in models/finetuning.py. Module attribute names are Hugging Face's, so
`roberta.encoder.layer.3.attention.self.query.weight` is both a path here and a key in a `transformers` checkpoint.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from minibert import losses
from minibert.config import BertConfig
from minibert.models.base import PreTrainedModel
from minibert.models.bert import BertModel
from minibert.models.heads import select_masked
from minibert.nn.activations import activation
from minibert.nn.embeddings import Embeddings, offset_position_ids
from minibert.nn.linear import Linear
from minibert.nn.norms import LayerNorm
from minibert.nn.tied_decoder import TiedDecoder


@dataclasses.dataclass
class RobertaConfig(BertConfig):
    """RoBERTa: BERT's fields plus the <s> and </s> ids, with Hugging Face's names and defaults (BERT-base's, but
    the 50,265-piece byte-level BPE vocabulary, pad 1, <s> 0, </s> 2). The released models set
    max_position_embeddings 514, type_vocab_size 1 and layer_norm_eps 1e-5 in their config.json, as the presets
    here do (presets.py)."""

    model_type: ClassVar[str] = "roberta"

    vocab_size: int = 50265
    pad_token_id: int = 1
    bos_token_id: int | None = 0
    eos_token_id: int | list[int] | None = 2

    @property
    def longest_input(self) -> int:
        """The longest input: the position table less the rows at and below padding_idx."""
        return self.max_position_embeddings - self.pad_token_id - 1

    def validate(self) -> None:
        super().validate()
        if self.longest_input < 1:
            raise ValueError(f"max_position_embeddings {self.max_position_embeddings} leaves no position after "
                             f"pad_token_id {self.pad_token_id}: RoBERTa's positions start at pad_token_id + 1")


class RobertaEmbeddings(Embeddings):
    """BERT's embeddings (HF `RobertaEmbeddings`) with positions counted from padding_idx + 1. The position
    table's padding_idx row gets no gradient, as the reference's `nn.Embedding(padding_idx=pad)`."""

    def __init__(self, *, pad_token_id: int, **kwargs):
        super().__init__(pad_token_id=pad_token_id, **kwargs)
        self.position_embeddings.padding_idx = pad_token_id

    def __call__(self, input_ids: jax.Array | None, token_type_ids: jax.Array,
                 inputs_embeds: jax.Array | None = None) -> jax.Array:
        pad = self.position_embeddings.padding_idx
        if input_ids is None:   # embeddings cannot tell padding apart: pad + 1, pad + 2, … as the reference
            positions = pad + 1 + jnp.arange(token_type_ids.shape[1])[None, :]
        else:
            positions = offset_position_ids(input_ids, pad)
        return super().__call__(input_ids, token_type_ids, inputs_embeds, position_ids=positions)


class _RobertaPreTrainedModel(PreTrainedModel):
    """What every RoBERTa model shares: its config, and an input length check that counts the position offset."""

    config_class = RobertaConfig

    def check_inputs(self, input_ids: np.ndarray, attention_mask: np.ndarray, token_type_ids: np.ndarray,
                     **packing) -> None:
        super().check_inputs(input_ids, attention_mask, token_type_ids, **packing)
        c = self.config
        if input_ids.shape[-1] > c.longest_input:
            raise ValueError(f"sequence length {input_ids.shape[-1]} exceeds {c.longest_input}: RoBERTa's positions "
                             f"start at pad_token_id + 1 = {c.pad_token_id + 1}, so max_position_embeddings "
                             f"{c.max_position_embeddings} holds {c.longest_input} tokens")


class RobertaModel(_RobertaPreTrainedModel, BertModel):
    """The bare encoder, BERT's with RoBERTa's positions: (batch, seq) ids → last_hidden_state (batch, seq, hidden),
    pooler_output (batch, hidden) (with `add_pooling_layer`, as Hugging Face's)."""

    embeddings_class = RobertaEmbeddings


class RobertaLMHead(nnx.Module):
    """logits = layer_norm(gelu(dense(h))) Eᵀ + b: (batch, seq, hidden) → (batch, seq, vocab).

    GELU whatever `hidden_act` says, as the reference. E is the token embedding matrix when `tie_word_embeddings`
    (HF then ties `decoder.weight` to it and `decoder.bias` to `bias`, and saves neither), else `decoder` is the
    head's own Linear, bias included (transformers ≥ 5 keeps `decoder.bias` apart from `bias`, which it no longer
    reads; both are kept here, so both keys round-trip)."""

    def __init__(self, config: RobertaConfig, *, dtype, rngs: nnx.Rngs):
        c = config
        self.dense = Linear(c.hidden_size, c.hidden_size, init_std=c.initializer_range, dtype=dtype, rngs=rngs)
        self.act = activation("gelu")
        self.layer_norm = LayerNorm(c.hidden_size, eps=c.layer_norm_eps, dtype=dtype)
        self.decoder = TiedDecoder(c.hidden_size, c.vocab_size, tied=c.tie_word_embeddings,
                                   use_bias=not c.tie_word_embeddings, init_std=c.initializer_range, dtype=dtype,
                                   rngs=rngs)
        self.bias = nnx.Param(jnp.zeros((c.vocab_size,), jnp.float32))

    def __call__(self, hidden: jax.Array, word_embeddings: jax.Array) -> jax.Array:
        h = self.layer_norm(self.act(self.dense(hidden)))                                      # (batch, seq, hidden)
        logits = self.decoder(h, word_embeddings)
        return logits if self.decoder.bias is not None else logits + self.bias[...].astype(h.dtype)  # untied: its own


class RobertaForMaskedLM(_RobertaPreTrainedModel):
    """RoBERTa with its MLM head: logits (batch, seq, vocab); loss = MLM cross-entropy given `labels` (-100 where
    nothing is predicted). Given `masked_positions` (batch, n), the head runs there only (a sparse head, as
    `BertForMaskedLM`): logits (batch, n, vocab), `labels` (batch, n)."""

    base_model_prefix = "roberta"
    ignored_checkpoint_keys = (r"^lm_head\.decoder\.(weight|bias)$",)   # tied copies, when tied

    def __init__(self, config: RobertaConfig, *, dtype=jnp.float32, rngs: nnx.Rngs | None = None):
        rngs = rngs or nnx.Rngs(0)
        self.config = config
        self.roberta = RobertaModel(config, add_pooling_layer=False, dtype=dtype, rngs=rngs)
        self.lm_head = RobertaLMHead(config, dtype=dtype, rngs=rngs)

    def forward(self, input_ids, attention_mask, token_type_ids, *, output_hidden_states=False, labels=None,
                masked_positions=None, inputs_embeds=None):
        out = self.roberta.forward(input_ids, attention_mask, token_type_ids, output_hidden_states=output_hidden_states,
                                   inputs_embeds=inputs_embeds)
        scored = select_masked(out.last_hidden_state, masked_positions, labels)  # all positions, or the masked ones
        logits = self.lm_head(scored, self.roberta.embeddings.word_embeddings.weight[...])
        return out.replace(logits=logits, loss=None if labels is None else losses.masked_lm_loss(logits, labels))
