"""Task heads at float32 parity with `transformers`: sequence / token classification, question answering and
multiple choice for BERT, MobileBERT, ConvBERT, ELECTRA, RoBERTa, ModernBERT, ALBERT, DistilBERT and DeBERTa-v2 — logits and losses on padded batches
with token types, labels read from config.json, and one fine-tuning step's loss and gradients per family."""

import numpy as np
import pytest

import minibert.models.finetuning as finetuning
from minibert.checkpoints.hf import from_pretrained, model_state_dict, save_pretrained
from tests.conftest import assert_close_at_real, padded_batch, save_reference

MODERN_TOKENS = dict(pad_token_id=0, bos_token_id=1, eos_token_id=2, cls_token_id=1, sep_token_id=2)
# One layer where one shows everything (compilation dominates the run time); ModernBERT's two are one global,
# one sliding-window layer.
FAMILIES = {
    "Bert": dict(vocab_size=99, hidden_size=32, num_hidden_layers=1, num_attention_heads=4, intermediate_size=37,
                 type_vocab_size=3),
    "MobileBert": dict(vocab_size=99, hidden_size=32, embedding_size=16, intra_bottleneck_size=16,
                       num_attention_heads=4, intermediate_size=24, num_hidden_layers=1, type_vocab_size=2,
                       num_feedforward_networks=2),
    "ConvBert": dict(vocab_size=99, hidden_size=32, embedding_size=16, num_hidden_layers=1, num_attention_heads=4,
                     intermediate_size=37, head_ratio=2, conv_kernel_size=3, type_vocab_size=2),
    "Electra": dict(vocab_size=99, embedding_size=16, hidden_size=32, num_hidden_layers=1, num_attention_heads=4,
                    intermediate_size=37, type_vocab_size=2, hidden_act="relu"),
    "Roberta": dict(vocab_size=99, hidden_size=32, num_hidden_layers=1, num_attention_heads=4, intermediate_size=37,
                    type_vocab_size=1, max_position_embeddings=40, layer_norm_eps=1e-5),
    "ModernBert": dict(vocab_size=99, hidden_size=32, intermediate_size=40, num_hidden_layers=2, num_attention_heads=4,
                       local_attention=8, global_attn_every_n_layers=2, **MODERN_TOKENS),
    "Albert": dict(vocab_size=99, embedding_size=16, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                   intermediate_size=37, type_vocab_size=2),
    "DistilBert": dict(vocab_size=99, dim=32, n_layers=1, n_heads=4, hidden_dim=37),
    "DebertaV2": dict(vocab_size=99, hidden_size=32, num_hidden_layers=1, num_attention_heads=4, intermediate_size=37,
                      relative_attention=True, pos_att_type=["p2c", "c2p"], position_buckets=8, share_att_key=True,
                      norm_rel_ebd="layer_norm", position_biased_input=False, type_vocab_size=2,
                      pooler_hidden_act="tanh"),
}
HEADS = ["ForSequenceClassification", "ForTokenClassification", "ForQuestionAnswering", "ForMultipleChoice"]
LABELS = {"ForSequenceClassification": 3, "ForTokenClassification": 5}
# each head's own options, spread over the pairs so that every path runs once
OPTIONS = {
    ("MobileBert", "ForMultipleChoice"): dict(classifier_activation=False),   # pooler output = h_[CLS], no weights
    ("ModernBert", "ForSequenceClassification"): dict(classifier_pooling="mean"),
    ("ModernBert", "ForTokenClassification"): dict(classifier_bias=True, classifier_activation="silu"),
    ("ModernBert", "ForMultipleChoice"): dict(classifier_pooling="cls"),
    ("Electra", "ForQuestionAnswering"): dict(embedding_size=32),                # no embeddings_project
}
PAIRS = [(f, h) for f in FAMILIES for h in HEADS]
SHAPE = (3, 16)  # padded rows of 16, 11 and 5 tokens
CHOICES = 3


def reference_config(family: str, head: str, **changes) -> dict:
    config = dict(FAMILIES[family], **OPTIONS.get((family, head), {}))
    if head in LABELS:
        config["num_labels"] = LABELS[head]
    return dict(config, **changes)


@pytest.fixture(scope="module", params=PAIRS, ids=lambda p: p[0] + p[1])
def pair(request, tmp_path_factory):
    family, head = request.param
    path = tmp_path_factory.mktemp(family + head)
    config = reference_config(family, head)
    reference = save_reference(f"{family}{head}", f"{family}Config", path, **config)
    return reference, from_pretrained(path), config, head


def inputs(config: dict, head: str, seq: int, seed: int) -> dict:
    batch = CHOICES * 2 if head == "ForMultipleChoice" else SHAPE[0]
    out = padded_batch(config["vocab_size"], batch, seq, type_vocab_size=config.get("type_vocab_size", 0), seed=seed)
    if head == "ForQuestionAnswering" and "local_attention" in config:
        # The span loss is a softmax over every position, padding included, and what ModernBERT computes at a
        # padding position is not defined: the reference's SDPA path attends from it to the real tokens, its
        # flash path returns zeros there, minibert attends from it to nothing. Logits at real positions are
        # compared on padded rows (in the other heads); the QA loss on unpadded rows.
        out["attention_mask"][:] = 1
    if head == "ForMultipleChoice":
        out = {k: v.reshape(2, CHOICES, seq) for k, v in out.items()}
    return out


def targets(config: dict, head: str, batch: dict, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    rows, seq = batch["input_ids"].shape[0], batch["input_ids"].shape[-1]
    if head == "ForSequenceClassification":
        n = config.get("num_labels", 2)
        return {"labels": rng.normal(size=rows).astype(np.float32) if n == 1 else rng.integers(0, n, rows)}
    if head == "ForTokenClassification":
        labels = rng.integers(0, config["num_labels"], (rows, seq))
        return {"labels": np.where(batch["attention_mask"] > 0, labels, -100)}
    if head == "ForQuestionAnswering":  # one start past the end of the window: clamped, then ignored
        return {"start_positions": np.array([2, seq + 5, 0]), "end_positions": np.array([4, 7, 3])}
    return {"labels": rng.integers(0, CHOICES, rows)}


def test_heads_match_transformers(pair):
    """Logits at real positions and the loss given labels, within 1e-5 (float32)."""
    import torch

    reference, model, config, head = pair
    batch = inputs(config, head, SHAPE[1], seed=3)
    labels = targets(config, head, batch, seed=4)
    ours = model(**batch, **labels)
    with torch.no_grad():
        theirs = reference(**{k: torch.from_numpy(v) for k, v in {**batch, **labels}.items()})
    mask = batch["attention_mask"]
    if head == "ForQuestionAnswering":
        assert_close_at_real(ours.start_logits, theirs.start_logits, mask, what="start logits")
        assert_close_at_real(ours.end_logits, theirs.end_logits, mask, what="end logits")
    else:
        assert_close_at_real(ours.logits, theirs.logits, mask, what="logits")
    np.testing.assert_allclose(float(ours.loss), theirs.loss.item(), rtol=1e-5, atol=1e-6)


def test_labels_are_read_and_written(pair, tmp_path):
    """`id2label` from config.json gives the head's size; a save writes the labels back for transformers."""
    import transformers

    reference, model, config, head = pair
    expected = reference.config.num_labels
    assert finetuning.num_labels(model.config) == expected
    assert finetuning.id2label(model.config) == reference.config.id2label
    if head == "ForSequenceClassification":
        finetuning.set_labels(model.config, [f"class {i}" for i in range(expected)])
        save_pretrained(model, tmp_path)
        again = transformers.AutoConfig.from_pretrained(tmp_path)
        assert again.id2label == {i: f"class {i}" for i in range(expected)}
        assert again.label2id == {f"class {i}": i for i in range(expected)}


def test_heads_take_inputs_embeds_and_return_attentions(pair):
    """inputs_embeds (…, seq, embedding_size; (batch, choices, seq, …) for multiple choice) instead of input_ids,
    and `output_attentions`: the logits and each layer's attention probabilities as transformers' eager ones."""
    import torch

    from tests.parity.test_hf_api import assert_attentions_match

    reference, model, config, head = pair
    batch = inputs(config, head, SHAPE[1], seed=5)
    width = config.get("embedding_size", config.get("hidden_size", config.get("dim")))   # DistilBERT: dim
    embeds = np.random.default_rng(6).normal(0, 0.5, (*batch.pop("input_ids").shape, width)).astype(np.float32)
    batch["inputs_embeds"] = embeds
    ours = model(**batch, output_attentions=True)
    reference.set_attn_implementation("eager")
    with torch.no_grad():
        theirs = reference(**{k: torch.from_numpy(v) for k, v in batch.items()}, output_attentions=True)
    mask = batch["attention_mask"]
    for name in ("start_logits", "end_logits") if head == "ForQuestionAnswering" else ("logits",):
        assert_close_at_real(getattr(ours, name), theirs[name], mask, what=name)
    assert ours.keys() == tuple(theirs.keys())
    assert_attentions_match(ours.attentions, theirs.attentions, mask.reshape(-1, mask.shape[-1]))


# one head per family, together every loss: cross-entropy per sequence, per token, per choice, the span loss,
# and regression (one output: mean squared error)
STEP = [("Bert", "ForSequenceClassification", {}), ("MobileBert", "ForTokenClassification", {}),
        ("ConvBert", "ForMultipleChoice", {}), ("Electra", "ForSequenceClassification", dict(num_labels=1)),
        ("Roberta", "ForSequenceClassification", {}),
        ("ModernBert", "ForQuestionAnswering", {}), ("Albert", "ForMultipleChoice", {}),
        ("DistilBert", "ForSequenceClassification", {}), ("DebertaV2", "ForTokenClassification", {})]


@pytest.mark.parametrize("family,head,changes", STEP, ids=lambda x: x if isinstance(x, str) else "")
def test_fine_tuning_step_loss_and_gradients_match(family, head, changes, tmp_path):
    """d(loss)/d(every parameter) against PyTorch autograd from the same weights, dropout off."""
    import torch
    from flax import nnx

    config = reference_config(family, head, **changes)
    reference = save_reference(f"{family}{head}", f"{family}Config", tmp_path, **config)
    model = from_pretrained(tmp_path)
    batch = inputs(config, head, 12, seed=5)
    labels = targets(config, head, batch, seed=6)

    loss, grads = nnx.jit(nnx.value_and_grad(lambda m: m(**batch, **labels).loss))(model)
    out = reference(**{k: torch.from_numpy(v) for k, v in {**batch, **labels}.items()})
    out.loss.backward()
    np.testing.assert_allclose(float(loss), out.loss.item(), rtol=1e-5)

    theirs = dict(reference.named_parameters())
    ours = {".".join(map(str, p)): np.asarray(v[...]) for p, v in nnx.to_flat_state(grads)}
    assert set(ours) == set(model_state_dict(model)) and set(ours) <= set(theirs)
    for name, got in ours.items():
        expected = theirs[name].grad.numpy()
        if np.abs(expected).max() <= 1e-6:
            # zero in theory, rounding noise on both sides: a softmax is shift-invariant, so the gradient of a
            # bias added to every score (attention key bias, multiple-choice or span classifier bias) vanishes
            assert np.abs(got).max() <= 1e-6, name
            continue
        assert np.abs(got - expected).max() <= 1e-5 * np.abs(expected).max(), name


@pytest.mark.parametrize("kind", ["regression", "multi-label"])
def test_sequence_losses_match_torch(kind):
    """Mean squared error (one output) and multi-label binary cross-entropy, as transformers computes them."""
    import torch

    from minibert.models.task_losses import sequence_classification_loss

    rng = np.random.default_rng(0)
    logits = rng.normal(size=(4, 1 if kind == "regression" else 3)).astype(np.float32)
    if kind == "regression":
        labels = rng.normal(size=4).astype(np.float32)
        expected = torch.nn.functional.mse_loss(torch.from_numpy(logits).squeeze(), torch.from_numpy(labels))
    else:
        labels = rng.integers(0, 2, (4, 3)).astype(np.float32)
        expected = torch.nn.functional.binary_cross_entropy_with_logits(torch.from_numpy(logits),
                                                                        torch.from_numpy(labels))
    ours = sequence_classification_loss(logits, labels, None)
    np.testing.assert_allclose(float(ours), expected.item(), rtol=1e-6)
