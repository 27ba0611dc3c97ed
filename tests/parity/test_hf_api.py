"""What Hugging Face users call: `output_attentions`, `inputs_embeds`, the outputs read as transformers' (by
position, by name, `to_tuple`) and the NSP-only models, against `transformers` at float32, every family."""

import numpy as np
import pytest

import minibert
from minibert.nn.attention import set_attention_implementation
from tests.conftest import assert_close_at_real, padded_batch, save_reference, torch_outputs
from tests.parity.test_bert import CONFIGS as BERT
from tests.parity.test_convbert import CONFIGS as CONVBERT
from tests.parity.test_electra import CONFIGS as ELECTRA
from tests.parity.test_mobilebert import CONFIGS as MOBILEBERT
from tests.parity.test_modernbert import CONFIGS as MODERNBERT
from tests.parity.test_roberta import CONFIGS as ROBERTA

# odd configs: 3 heads of width 5, ConvBERT's half-width heads (4 // head_ratio 2), MobileBERT's bottleneck
# attention, ELECTRA's projected embeddings, RoBERTa's positions after pad id 3 and untied decoder, ModernBERT's
# global and sliding-window (±4) layers
CASES = {
    "BertModel": ("BertConfig", BERT["odd-heads"]),
    "BertForPreTraining": ("BertConfig", BERT["odd-heads"]),
    "MobileBertForPreTraining": ("MobileBertConfig", MOBILEBERT["paper"]),
    "ConvBertForMaskedLM": ("ConvBertConfig", CONVBERT["embed16-k9-groups2"]),
    "ElectraForPreTraining": ("ElectraConfig", ELECTRA["projected"]),
    "RobertaForMaskedLM": ("RobertaConfig", ROBERTA["pad3-untied"]),
    "ModernBertForMaskedLM": ("ModernBertConfig", MODERNBERT["every3"]),
}
SHAPE = (3, 13)


@pytest.fixture(scope="module", params=list(CASES))
def case(request, tmp_path_factory):
    """(eager transformers reference, minibert model, config) for one model class."""
    import transformers

    name = request.param
    config_class, config = CASES[name]
    path = tmp_path_factory.mktemp(name)
    save_reference(name, config_class, path, **config)
    reference = getattr(transformers, name).from_pretrained(path, attn_implementation="eager").eval()
    return reference, minibert.from_pretrained(path), config


def batch_for(config, seed=0) -> dict:
    return padded_batch(config["vocab_size"], *SHAPE, type_vocab_size=config.get("type_vocab_size", 0), seed=seed)


def assert_attentions_match(ours, theirs, mask):
    """Per layer (batch, heads, seq, seq), ≤ 1e-5 from every real query (what a padded query attends to is not
    defined: ModernBERT's may see no key at all); from a real query, padded keys get probability 0."""
    assert len(ours) == len(theirs)
    real = mask.astype(bool)
    for i, (a, b) in enumerate(zip(ours, theirs)):
        a = np.asarray(a)
        assert a.shape == tuple(b.shape), f"layer {i}: {a.shape} vs {tuple(b.shape)}"
        diff = np.abs(a - b.numpy()).transpose(0, 2, 1, 3)[real]             # (real queries, heads, keys)
        assert diff.max() <= 1e-5, f"attentions of layer {i}: max abs diff {diff.max():.3e}"
        for row, keys in zip(a.transpose(0, 2, 1, 3), real):                 # (queries, heads, keys), (keys,)
            assert not row[keys][..., ~keys].any(), f"layer {i}: a padded key has probability > 0"
            np.testing.assert_allclose(row[keys].sum(-1), 1.0, atol=1e-5)


def test_attentions_match_transformers_eager(case):
    """`output_attentions=True`: each layer's probabilities, and the output's fields in transformers' order."""
    reference, model, config = case
    batch = batch_for(config)
    ours = model(**batch, output_attentions=True, output_hidden_states=True)
    theirs = torch_outputs(reference, batch, output_attentions=True)
    assert ours.keys() == tuple(k for k in theirs.keys() if k != "cross_attentions")  # encoders: no cross-attention
    assert len(ours.attentions) == config["num_hidden_layers"]
    assert_attentions_match(ours.attentions, theirs.attentions, batch["attention_mask"])
    assert_close_at_real(ours[0], theirs[0], batch["attention_mask"], what=f"out[0] = {ours.keys()[0]}")
    assert model(**batch).attentions is None


def test_inputs_embeds_match_transformers(case):
    """inputs_embeds (batch, seq, embedding_size) instead of input_ids: every output as transformers'."""
    import torch

    reference, model, config = case
    batch = batch_for(config, seed=1)
    width = config.get("embedding_size", config["hidden_size"])
    batch["inputs_embeds"] = np.random.default_rng(2).normal(0, 0.5, (*SHAPE, width)).astype(np.float32)
    del batch["input_ids"]
    ours = model(**batch, output_hidden_states=True)
    theirs = torch_outputs(reference, batch)
    mask = batch["attention_mask"]
    for i, (a, b) in enumerate(zip(ours.hidden_states, theirs.hidden_states, strict=True)):
        assert_close_at_real(a, b, mask, what=f"hidden state {i}")
    for name, value in zip(ours.keys(), ours.to_tuple()):
        if name != "hidden_states":
            assert_close_at_real(value, theirs[name], mask, what=name)
    with pytest.raises(ValueError, match="either input_ids"):
        model(np.zeros(SHAPE, np.int64), inputs_embeds=batch["inputs_embeds"])
    with pytest.raises(TypeError, match="floats"):
        model(inputs_embeds=batch["inputs_embeds"].astype(np.int32))
    with pytest.raises(ValueError, match=f"\\(batch, seq, {width}\\)"):
        model(inputs_embeds=np.zeros((*SHAPE, width + 1), np.float32))
    assert torch.is_tensor(theirs[0])


def test_output_is_read_as_transformers_output():
    """out[0], out["name"], to_tuple(): the non-None fields in transformers' order; a pytree all the same."""
    import jax

    from minibert.models.outputs import ModelOutput

    hidden, logits, nsp, loss = np.ones((1, 2, 3)), np.ones((1, 2, 5)), np.ones((1, 2)), np.float32(1)
    encoder = ModelOutput(last_hidden_state=hidden, pooler_output=hidden[:, 0])
    assert encoder.keys() == ("last_hidden_state", "pooler_output") and encoder[0] is hidden
    pretraining = ModelOutput(last_hidden_state=hidden, logits=logits, seq_relationship_logits=nsp, loss=loss)
    assert pretraining.keys() == ("loss", "prediction_logits", "seq_relationship_logits")
    assert pretraining.to_tuple() == (loss, logits, nsp) and pretraining[1:] == (logits, nsp)
    assert pretraining["prediction_logits"] is pretraining.prediction_logits is pretraining.logits is logits
    masked_lm = ModelOutput(last_hidden_state=hidden, logits=logits, hidden_states=(hidden,))
    assert masked_lm.keys() == ("logits", "hidden_states") and masked_lm[0] is logits
    with pytest.raises(KeyError, match="pooler_output"):
        masked_lm["pooler_output"]
    assert len(jax.tree.leaves(masked_lm)) == 3


def test_fused_attention_records_on_the_reference_path(case):
    """With attentions requested, a model switched to fused attention records them on the reference path, and
    is left as it was (fused, not recording)."""
    reference, model, config = case
    batch = batch_for(config)
    expected = model(**batch, output_attentions=True)
    set_attention_implementation(model, "fused")
    try:
        ours = model(**batch, output_attentions=True)
        assert [m.record_attention for _, m in _attention_modules(model)] == [False] * config["num_hidden_layers"]
        for a, b in zip(ours.attentions, expected.attentions, strict=True):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    finally:
        set_attention_implementation(model, "reference")


def _attention_modules(model):
    from flax import nnx

    return [(path, m) for path, m in nnx.iter_modules(model) if hasattr(m, "record_attention")]


# ---- next sentence prediction ---------------------------------------------------------------------------------

@pytest.mark.parametrize("name, config_class, config", [
    ("BertForNextSentencePrediction", "BertConfig", BERT["wide-types"]),
    ("MobileBertForNextSentencePrediction", "MobileBertConfig", MOBILEBERT["bottleneck-attention-unshared"]),
], ids=["bert", "mobilebert"])
def test_next_sentence_prediction_matches_transformers(name, config_class, config, tmp_path):
    """logits (batch, 2) and the loss given `labels`; saved by minibert, transformers loads it with no key
    complaints and agrees."""
    import torch
    import transformers

    reference = save_reference(name, config_class, tmp_path / "hf", **config)
    model = minibert.from_pretrained(tmp_path / "hf")
    assert type(model).__name__ == name
    batch = padded_batch(config["vocab_size"], 3, 11, type_vocab_size=config["type_vocab_size"])
    labels = np.array([0, 1, 1])
    ours = model(**batch, labels=labels)
    theirs = torch_outputs(reference, batch, labels=torch.from_numpy(labels))
    assert ours.logits.shape == (3, 2) and ours.keys()[:2] == ("loss", "logits")
    assert_close_at_real(ours.logits, theirs.logits, batch["attention_mask"], what="NSP logits")
    np.testing.assert_allclose(float(ours.loss), theirs.loss.item(), rtol=1e-5)
    assert "labels" in type(model).batch_fields() and "inputs_embeds" not in type(model).batch_fields()

    minibert.save_pretrained(model, tmp_path / "ours")
    again, info = getattr(transformers, name).from_pretrained(tmp_path / "ours", output_loading_info=True)
    assert not any(info.values()), info
    assert_close_at_real(model(**batch).logits, torch_outputs(again.eval(), batch).logits, batch["attention_mask"])
