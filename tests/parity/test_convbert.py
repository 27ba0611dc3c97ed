"""ConvBERT parity with `transformers` at float32: every layer, MLM logits, loss and gradients, checkpoint round trips.

The configs vary what ConvBERT adds to BERT: head_ratio (1, 2), conv_kernel_size (3, 9), num_groups (1, 2) and
an embedding width below the hidden width (`embeddings_project`). The batches are padded: the convolution
branch does not mask padding, so real tokens near padding see it, in both implementations.
"""

import numpy as np
import pytest
from flax import nnx

import minibert
from minibert.checkpoints.hf import model_state_dict, read_state_dict
from minibert.models.convbert import ConvBertConfig, ConvBertForMaskedLM, ConvBertModel
from tests.conftest import assert_close_at_real, assert_gradients_match, padded_batch, save_reference, torch_outputs

TINY = dict(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4)
CONFIGS = {
    "ratio2-k9": dict(TINY, intermediate_size=37, head_ratio=2, conv_kernel_size=9, num_groups=1, embedding_size=32,
                      type_vocab_size=2),
    # hidden_act relu: the generator head still uses GELU
    "ratio1-k3-groups2": dict(TINY, intermediate_size=38, head_ratio=1, conv_kernel_size=3, num_groups=2,
                              embedding_size=32, type_vocab_size=3, hidden_act="relu"),
    "embed16-k9-groups2": dict(TINY, intermediate_size=40, head_ratio=2, conv_kernel_size=9, num_groups=2,
                               embedding_size=16, type_vocab_size=2, hidden_act="gelu_new", layer_norm_eps=1e-5,
                               max_position_embeddings=24),
}
# (2, 5): shorter than the kernel, and a row of length 1 beside padding. Each shape costs a compilation, so the
# bare encoder (also checked through the masked-LM model's hidden states) runs one.
SHAPES = {"ConvBertForMaskedLM": [(2, 5), (3, 16)], "ConvBertModel": [(3, 16)]}
MODELS = ["ConvBertModel", "ConvBertForMaskedLM"]


def logits_of(model, batch):
    """minibert logits, or the last hidden state for the bare encoder."""
    out = model(**batch)
    return np.asarray(out.logits if out.logits is not None else out.last_hidden_state)


def reference_logits(reference, batch):
    out = torch_outputs(reference, batch)
    return (out.logits if hasattr(out, "logits") else out.last_hidden_state).numpy()


@pytest.fixture(scope="module", params=[(m, c) for m in MODELS for c in CONFIGS], ids=lambda p: f"{p[0]}-{p[1]}")
def pair(request, tmp_path_factory):
    model_name, config_name = request.param
    path = tmp_path_factory.mktemp(f"{model_name}-{config_name}")
    reference = save_reference(model_name, "ConvBertConfig", path, **CONFIGS[config_name])
    return reference, minibert.from_pretrained(path), CONFIGS[config_name], path


def test_forward_matches_transformers(pair):
    reference, model, config, _ = pair
    for shape in SHAPES[type(model).__name__]:
        batch = padded_batch(config["vocab_size"], *shape, type_vocab_size=config["type_vocab_size"], seed=shape[1])
        ours = model(**batch, output_hidden_states=True)
        theirs = torch_outputs(reference, batch)
        mask = batch["attention_mask"]
        assert len(ours.hidden_states) == len(theirs.hidden_states) == config["num_hidden_layers"] + 1
        for i, (a, b) in enumerate(zip(ours.hidden_states, theirs.hidden_states)):
            assert_close_at_real(a, b, mask, what=f"{shape}: hidden state {i}")
        if isinstance(model, ConvBertForMaskedLM):
            assert_close_at_real(ours.logits, theirs.logits, mask, what=f"{shape}: MLM logits")
        else:
            assert_close_at_real(ours.last_hidden_state, theirs.last_hidden_state, mask, what=f"{shape}: last hidden")


def test_mlm_loss_and_gradients_match(tmp_path):
    """MLM loss (labels with -100) and d(loss)/d(every parameter) against PyTorch autograd, dropout off."""
    import torch

    config = CONFIGS["embed16-k9-groups2"]
    reference = save_reference("ConvBertForMaskedLM", "ConvBertConfig", tmp_path, **config)
    model = minibert.from_pretrained(tmp_path)
    batch = padded_batch(config["vocab_size"], 3, 12, type_vocab_size=config["type_vocab_size"])
    # the pad token's embedding row gets no gradient from lookups (padding_idx), only from the tied head
    batch["input_ids"][:, -2:] = reference.config.pad_token_id
    rng = np.random.default_rng(1)
    labels = np.where(rng.random((3, 12)) < 0.3, rng.integers(0, config["vocab_size"], (3, 12)), -100)
    labels[0, 0] = 5  # at least one predicted position

    def loss_fn(m):
        return m(**batch, labels=labels).loss

    loss, grads = nnx.jit(nnx.value_and_grad(loss_fn))(model)
    out = reference(**{k: torch.from_numpy(v) for k, v in batch.items()}, labels=torch.from_numpy(labels))
    out.loss.backward()
    np.testing.assert_allclose(float(loss), out.loss.item(), rtol=1e-5)

    assert_gradients_match(grads, dict(reference.named_parameters()), model_state_dict(model))


def test_transformers_checkpoint_round_trips_through_minibert(pair, tmp_path):
    """HF dir → minibert → save: the same tensors, byte for byte; transformers loads it cleanly, same outputs."""
    import transformers

    reference, model, config, path = pair
    model.save_pretrained(tmp_path)
    original, saved = read_state_dict(path), read_state_dict(tmp_path)
    assert set(saved) == set(original)
    for key, value in original.items():
        assert saved[key].dtype == value.dtype and saved[key].tobytes() == value.tobytes(), key

    reloaded, info = getattr(transformers, type(model).__name__).from_pretrained(tmp_path, output_loading_info=True)
    assert not any(info[k] for k in ("missing_keys", "unexpected_keys", "mismatched_keys")), info
    batch = padded_batch(config["vocab_size"], 2, 9, type_vocab_size=config["type_vocab_size"])
    np.testing.assert_array_equal(reference_logits(reloaded.eval(), batch), reference_logits(reference, batch))


@pytest.mark.parametrize("model_class,tied", [(ConvBertForMaskedLM, True), (ConvBertForMaskedLM, False),
                                              (ConvBertModel, True)], ids=["mlm-tied", "mlm-untied", "model"])
def test_minibert_model_loads_in_transformers(model_class, tied, tmp_path):
    """A model built in minibert → save → transformers: no missing or unexpected keys, the same outputs; and back."""
    import transformers

    config = ConvBertConfig(**CONFIGS["embed16-k9-groups2"], tie_word_embeddings=tied)
    model = model_class(config, rngs=nnx.Rngs(3))
    model.eval()
    model.save_pretrained(tmp_path)
    reference, info = getattr(transformers, model_class.__name__).from_pretrained(tmp_path, output_loading_info=True)
    assert not any(info[k] for k in ("missing_keys", "unexpected_keys", "mismatched_keys")), info
    batch = padded_batch(config.vocab_size, 3, 16, type_vocab_size=config.type_vocab_size)
    mask = batch["attention_mask"]
    assert_close_at_real(logits_of(model, batch), reference_logits(reference.eval(), batch), mask, what="outputs")

    again = minibert.from_pretrained(tmp_path)
    assert type(again) is model_class and again.config.tie_word_embeddings is tied
    np.testing.assert_array_equal(logits_of(again, batch), logits_of(model, batch))


@pytest.mark.parametrize("pair", [("ConvBertForMaskedLM", "embed16-k9-groups2")], indirect=True,
                         ids=lambda p: f"{p[0]}-{p[1]}")
def test_bare_encoder_loads_from_a_masked_lm_checkpoint(pair):
    reference, _, config, path = pair
    encoder = ConvBertModel.from_pretrained(path)
    batch = padded_batch(config["vocab_size"], 3, 16, type_vocab_size=config["type_vocab_size"])
    assert_close_at_real(encoder(**batch).last_hidden_state, torch_outputs(reference.convbert, batch).last_hidden_state,
                         batch["attention_mask"], what="encoder")


def test_parity_command_passes(pair, capsys):
    from minibert.cli import main

    *_, path = pair
    assert main(["parity", str(path)]) == 0
    assert "PASS" in capsys.readouterr().out


@pytest.mark.parametrize("change,message", [
    (dict(conv_kernel_size=4), "conv_kernel_size must be a positive odd number"),
    (dict(hidden_size=36, num_attention_heads=4, head_ratio=1), "multiple of 2 × 4 heads"),
    (dict(num_groups=3), "multiples of num_groups 3"),
    (dict(head_ratio=0), "head_ratio must be ≥ 1"),
], ids=["even-kernel", "odd-head-width", "groups", "head-ratio"])
def test_config_rejects_shapes_the_architecture_cannot_build(change, message):
    with pytest.raises(ValueError, match=message):
        ConvBertConfig(**{**CONFIGS["ratio2-k9"], **change}).validate()   # checked when a model is built
