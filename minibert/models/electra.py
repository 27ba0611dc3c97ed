"""ELECTRA: a generator that fills in masked tokens and a discriminator that spots which tokens it replaced.

Clark et al., "ELECTRA: Pre-training Text Encoders as Discriminators Rather Than Generators" (ICLR 2020).
    §2     the encoder is BERT's (post-LN Transformer)                                → models/bert.py
           embeddings of size E, projected to the hidden size H when E ≠ H (`embeddings_project`)
    §2     generator G: a small masked LM, softmax over the vocabulary tied to the token embeddings
           discriminator D: D(x, t) = sigmoid(wᵀ h_D(x)_t), "is token t replaced?"     (ElectraForPreTraining)
    §3.2   weight sharing: G and D share one set of embeddings (token, position, type)  (ElectraPretrainer)
    §2     loss: L_MLM(x, θ_G) + λ L_Disc(x, θ_D), λ = 50                               → minibert/rtd.py
Generator and discriminator are separate Hugging Face checkpoints (`ElectraForMaskedLM`,
`ElectraForPreTraining`); module attribute names are Hugging Face's, so parameter paths are checkpoint keys.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import ClassVar

import jax
import jax.numpy as jnp
from flax import nnx

from minibert import losses, rtd
from minibert.config import BertConfig
from minibert.models.base import PreTrainedModel, signature_fields
from minibert.models.bert import BertEncoder
from minibert.models.heads import PredictionHeadTransform
from minibert.models.outputs import ModelOutput
from minibert.nn.activations import activation
from minibert.nn.attention import padding_mask
from minibert.nn.embeddings import EmbeddingProjection, Embeddings
from minibert.nn.linear import Linear
from minibert.nn.norms import LayerNorm
from minibert.nn.tied_decoder import TiedDecoder


@dataclasses.dataclass
class ElectraConfig(BertConfig):
    """ELECTRA: BERT's fields plus `embedding_size`; defaults are Hugging Face's (ELECTRA-Small's discriminator:
    E=128, H=256, A=4, L=12)."""

    model_type: ClassVar[str] = "electra"

    embedding_size: int = 128
    hidden_size: int = 256
    num_attention_heads: int = 4
    intermediate_size: int = 1024


class ElectraDiscriminatorPredictions(nnx.Module):
    """The replaced-token-detection head (§2): logit_t = wᵀ act(W h_t + b) + c,
    (batch, seq, hidden) → (batch, seq).

    sigmoid(logit_t) is D's probability that token t was replaced by the generator."""

    def __init__(self, config: ElectraConfig, *, dtype, rngs: nnx.Rngs):
        c = config
        self.dense = Linear(c.hidden_size, c.hidden_size, init_std=c.initializer_range, dtype=dtype, rngs=rngs)
        self.activation = activation(c.hidden_act)
        self.dense_prediction = Linear(c.hidden_size, 1, init_std=c.initializer_range, dtype=dtype, rngs=rngs)

    def __call__(self, hidden: jax.Array) -> jax.Array:
        return self.dense_prediction(self.activation(self.dense(hidden)))[..., 0]


class ElectraGeneratorPredictions(PredictionHeadTransform):
    """The generator's MLM transform: LayerNorm(gelu(W h + b)), (batch, seq, hidden) → (batch, seq, embedding_size).

    Down to the embedding size, so that the output layer can be the (tied) token embedding matrix
    (`generator_lm_head`, a `TiedDecoder`). The activation is the exact GELU whatever `hidden_act` says, as Hugging
    Face's `ElectraGeneratorPredictions` has it (the original code uses `hidden_act`, which is "gelu" in every
    released configuration). ConvBERT's generator head is this one (HF `ConvBertGeneratorPredictions`)."""

    def __init__(self, config: ElectraConfig, *, dtype, rngs: nnx.Rngs):
        c = config
        self.dense = Linear(c.hidden_size, c.embedding_size, init_std=c.initializer_range, dtype=dtype, rngs=rngs)
        self.act = activation("gelu")
        self.LayerNorm = LayerNorm(c.embedding_size, eps=c.layer_norm_eps, dtype=dtype)


class ElectraModel(PreTrainedModel):
    """The bare encoder: (batch, seq) ids → last_hidden_state (batch, seq, hidden). No pooler.

    hidden_states[0] is the embedding output after `embeddings_project` (batch, seq, hidden), as in HF."""

    config_class = ElectraConfig
    is_base_model = True

    def __init__(self, config: ElectraConfig, *, dtype=jnp.float32, rngs: nnx.Rngs | None = None):
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
        self.encoder = BertEncoder(c, dtype=dtype, rngs=rngs)

    def forward(self, input_ids, attention_mask, token_type_ids, *, output_hidden_states=False, inputs_embeds=None):
        x = self.embeddings_project(self.embeddings(input_ids, token_type_ids, inputs_embeds))  # (batch, seq, hidden)
        last, states = self.encoder(x, padding_mask(attention_mask))
        return ModelOutput(last_hidden_state=last, hidden_states=states if output_hidden_states else None)


class ElectraForPreTraining(PreTrainedModel):
    """The discriminator: logits (batch, seq), > 0 means "replaced"; given `labels` (batch, seq) with
    1 = replaced, 0 = original, loss = binary cross-entropy averaged over attended tokens. `forward` reads the encoder
    as `base_model`, so another encoder under this head (Flex's) subclasses it with its own `__init__`."""

    config_class = ElectraConfig
    base_model_prefix = "electra"

    def __init__(self, config: ElectraConfig, *, dtype=jnp.float32, rngs: nnx.Rngs | None = None):
        rngs = rngs or nnx.Rngs(0)
        self.config = config
        self.electra = ElectraModel(config, dtype=dtype, rngs=rngs)
        self.discriminator_predictions = ElectraDiscriminatorPredictions(config, dtype=dtype, rngs=rngs)

    def forward(self, input_ids, attention_mask, token_type_ids, *, output_hidden_states=False, labels=None,
                inputs_embeds=None):
        out = self.base_model.forward(input_ids, attention_mask, token_type_ids,
                                      output_hidden_states=output_hidden_states, inputs_embeds=inputs_embeds)
        logits = self.discriminator_predictions(out.last_hidden_state)
        loss = None if labels is None else losses.replaced_token_detection_loss(logits, labels, attention_mask)
        return out.replace(logits=logits, loss=loss)


class ElectraForMaskedLM(PreTrainedModel):
    """The generator: MLM logits (batch, seq, vocab); given `labels` (-100 where nothing is predicted),
    loss = cross-entropy at the labelled positions."""

    config_class = ElectraConfig
    base_model_prefix = "electra"
    ignored_checkpoint_keys = (r"^generator_lm_head\.weight$",)  # tied copy, when tied

    def __init__(self, config: ElectraConfig, *, dtype=jnp.float32, rngs: nnx.Rngs | None = None):
        rngs = rngs or nnx.Rngs(0)
        self.config = config
        self.electra = ElectraModel(config, dtype=dtype, rngs=rngs)
        self.generator_predictions = ElectraGeneratorPredictions(config, dtype=dtype, rngs=rngs)
        self.generator_lm_head = TiedDecoder(config.embedding_size, config.vocab_size,
                                             tied=config.tie_word_embeddings, init_std=config.initializer_range,
                                             dtype=dtype, rngs=rngs)

    def forward(self, input_ids, attention_mask, token_type_ids, *, output_hidden_states=False, labels=None,
                inputs_embeds=None):
        out = self.electra.forward(input_ids, attention_mask, token_type_ids, output_hidden_states=output_hidden_states,
                                   inputs_embeds=inputs_embeds)
        h = self.generator_predictions(out.last_hidden_state)
        logits = self.generator_lm_head(h, self.electra.embeddings.word_embeddings.weight[...])
        loss = None if labels is None else losses.masked_lm_loss(logits, labels)
        return out.replace(logits=logits, loss=loss)


class ElectraPretrainer(nnx.Module):
    """Generator + discriminator with ONE set of embeddings (§3.2), trained with L_MLM + λ·L_Disc (§2).

        pretrainer = ElectraPretrainer(ElectraForMaskedLM(gen_config), ElectraForPreTraining(disc_config))
        out = pretrainer(masked_ids, attention_mask, token_type_ids, labels=mlm_labels, key=key)
        out.total, out.mlm, out.rtd                                 # = out.loss, and out.logits: the generator's

    How the sharing is represented: the generator's `electra.embeddings` module (word, position and token
    type tables and their LayerNorm — the scope the original code shares) is replaced by the discriminator's,
    so both models hold the *same* `Embeddings` object. nnx keeps shared modules shared: `nnx.state(pretrainer)`
    lists each embedding parameter once (under `discriminator.electra.embeddings`), `nnx.grad` returns one
    gradient for it, the sum of the generator's and the discriminator's contributions, and an optimizer
    updates it once. Each model still sees the table as its own, so `save_pretrained(pretrainer.generator,
    dir)` and `save_pretrained(pretrainer.discriminator, dir)` write two complete Hugging Face checkpoints,
    as the released ELECTRA generator/discriminator pairs are. `embeddings_project` is not shared (the
    generator is narrower than the discriminator). The discriminator's table is the one kept: the
    generator's own is dropped at construction.
    """

    def __init__(self, generator: ElectraForMaskedLM, discriminator: ElectraForPreTraining, *,
                 rtd_weight: float = rtd.RTD_WEIGHT):
        g, d = generator.config, discriminator.config
        fields = ("vocab_size", "embedding_size", "max_position_embeddings", "type_vocab_size", "layer_norm_eps")
        differ = [f"{f}: generator {getattr(g, f)}, discriminator {getattr(d, f)}" for f in fields
                  if getattr(g, f) != getattr(d, f)]
        if differ:
            raise ValueError("generator and discriminator cannot share embeddings:\n  " + "\n  ".join(differ))
        generator.electra.embeddings = discriminator.electra.embeddings
        self.generator = generator
        self.discriminator = discriminator
        self.rtd_weight = rtd_weight

    needs_key = True  # the training loop passes a fresh PRNG key for the generator's samples each step

    def __call__(self, input_ids, attention_mask, token_type_ids=None, *, labels, key: jax.Array) -> rtd.RTDLosses:
        """input_ids (batch, seq) with the masked positions already masked; labels (batch, seq) the original
        tokens there and -100 elsewhere; attention_mask (batch, seq); `key` draws the generator's samples."""
        return rtd.electra_loss(self.generator, self.discriminator, input_ids, labels, attention_mask, key,
                                token_type_ids=token_type_ids, rtd_weight=self.rtd_weight)

    @classmethod
    def batch_fields(cls) -> tuple[str, ...]:
        """The batch fields it takes (input_ids, attention_mask, token_type_ids, labels); `key` is not one."""
        return signature_fields(cls.__call__)

    @classmethod
    def from_config(cls, discriminator: ElectraConfig, generator_fraction: float, *, dtype=jnp.float32,
                    rngs: nnx.Rngs | None = None) -> ElectraPretrainer:
        """A fresh pair: the generator is the discriminator with hidden size, heads and FFN scaled by
        `generator_fraction` (the paper's 1/4 for Small, 1/3 for Base, Appendix Table 6), same embeddings."""
        rngs = rngs or nnx.Rngs(0)
        scale = lambda n: max(1, round(n * generator_fraction))
        generator = dataclasses.replace(discriminator, hidden_size=scale(discriminator.hidden_size),
                                        num_attention_heads=scale(discriminator.num_attention_heads),
                                        intermediate_size=scale(discriminator.intermediate_size))
        return cls(ElectraForMaskedLM(generator, dtype=dtype, rngs=rngs),
                   ElectraForPreTraining(discriminator, dtype=dtype, rngs=rngs))

    def save_pretrained(self, path) -> None:
        """The discriminator (the model to fine-tune) to `path`, the generator to `path/generator`."""
        self.discriminator.save_pretrained(path)
        self.generator.save_pretrained(Path(path) / "generator")
