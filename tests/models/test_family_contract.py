"""What every family promises, written once over a table of families: a checkpoint round trip (outputs equal,
files byte for byte), `minibert parity` at 0 against `transformers` where it has the family, one clear error per
bad input, one compilation per input shape, dropout in train mode only.

Each family's own parity tests (tests/parity/) go deeper: odd configs, every head, gradients."""

import functools

import numpy as np
import pytest
from safetensors.numpy import load_file

import minibert
from minibert.checkpoints.hf import model_state_dict, save_pretrained
from minibert.cli import main
from minibert.models import auto
from tests.conftest import save_reference

# family → (its masked-LM class, config values: small, dropout on; the parity command runs 16 tokens)
FAMILIES = {
    "bert": ("BertForMaskedLM", dict(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                                     intermediate_size=24, max_position_embeddings=12, type_vocab_size=2)),
    "mobilebert": ("MobileBertForMaskedLM", dict(vocab_size=50, hidden_size=16, embedding_size=8,
                                                 intra_bottleneck_size=8, num_attention_heads=2,
                                                 intermediate_size=12, num_hidden_layers=2, type_vocab_size=2,
                                                 max_position_embeddings=12)),
    "convbert": ("ConvBertForMaskedLM", dict(vocab_size=50, hidden_size=16, embedding_size=16, num_hidden_layers=2,
                                             num_attention_heads=2, intermediate_size=24, conv_kernel_size=3,
                                             max_position_embeddings=12, type_vocab_size=2)),
    "electra": ("ElectraForMaskedLM", dict(vocab_size=50, embedding_size=8, hidden_size=16, num_hidden_layers=2,
                                           num_attention_heads=2, intermediate_size=24, max_position_embeddings=12,
                                           type_vocab_size=2)),
    "roberta": ("RobertaForMaskedLM", dict(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                                           intermediate_size=24, max_position_embeddings=20, type_vocab_size=1)),
    "modernbert": ("ModernBertForMaskedLM", dict(vocab_size=50, hidden_size=16, intermediate_size=24,
                                                 num_hidden_layers=2, num_attention_heads=2, local_attention=4,
                                                 max_position_embeddings=12, embedding_dropout=0.1, pad_token_id=0)),
    "mosaic_bert": ("MosaicBertForMaskedLM", dict(vocab_size=50, hidden_size=16, num_hidden_layers=2,
                                                  num_attention_heads=2, intermediate_size=24, type_vocab_size=2)),
    "albert": ("AlbertForMaskedLM", dict(vocab_size=50, embedding_size=8, hidden_size=16, num_hidden_layers=3,
                                         num_hidden_groups=2, num_attention_heads=2, intermediate_size=24,
                                         max_position_embeddings=12, hidden_dropout_prob=0.1)),
    "distilbert": ("DistilBertForMaskedLM", dict(vocab_size=50, dim=16, n_layers=2, n_heads=2, hidden_dim=24,
                                                 max_position_embeddings=12)),
    "deberta-v2": ("DebertaV2ForMaskedLM", dict(vocab_size=50, hidden_size=16, num_hidden_layers=2,
                                                num_attention_heads=2, intermediate_size=24, max_position_embeddings=12,
                                                relative_attention=True, pos_att_type=["p2c", "c2p"],
                                                position_buckets=4, share_att_key=True, norm_rel_ebd="layer_norm",
                                                position_biased_input=False, type_vocab_size=0, legacy=False)),
    "flex": ("FlexForMaskedLM", dict(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                                     intermediate_size=24, max_position_embeddings=12, type_vocab_size=2,
                                     positions="rope", attention="local_global", local_attention=4, ffn="geglu",
                                     norm="pre", unpad=True)),
}
NO_REFERENCE = {"mosaic_bert", "flex"}  # no `transformers` class: tested against NumPy / the families in tests/models/


@functools.cache
def build(family: str):
    """The family's masked LM with random weights, in eval mode; one per family for the whole file (a test that
    changes its mode or bucketing puts them back)."""
    name, values = FAMILIES[family]
    model_class = auto.model_class_by_name(name)
    model = model_class(model_class.config_class(**values))
    rng = np.random.default_rng(0)
    for param in model_state_dict(model).values():          # off the init: biases and norms count too
        param.set_value(rng.normal(0, 0.1, param.shape).astype(np.float32) + (param[...] == 1))
    model.eval()
    return model


def ids(model, shape=(2, 6), seed=0):
    return np.random.default_rng(seed).integers(3, model.config.vocab_size, shape).astype(np.int32)


@pytest.fixture(params=list(FAMILIES))
def family(request):
    return request.param


def test_round_trip_keeps_outputs_and_bytes(family, tmp_path):
    model = build(family)
    save_pretrained(model, tmp_path / "a")
    loaded = minibert.from_pretrained(tmp_path / "a")
    assert type(loaded) is type(model)
    batch = ids(model)
    np.testing.assert_array_equal(np.asarray(loaded(batch).logits), np.asarray(model(batch).logits))
    save_pretrained(loaded, tmp_path / "b")
    first, second = load_file(tmp_path / "a" / "model.safetensors"), load_file(tmp_path / "b" / "model.safetensors")
    assert set(first) == set(second) and all(first[k].tobytes() == second[k].tobytes() for k in first)


def test_parity_command_passes_against_transformers(family, tmp_path, capsys):
    if family in NO_REFERENCE:
        pytest.skip(f"{family} has no transformers class")
    name, values = FAMILIES[family]
    config_class = auto.model_class_by_name(name).config_class.__name__
    save_reference(name, config_class, tmp_path, **values)
    assert main(["parity", str(tmp_path)]) == 0, capsys.readouterr().out


def test_bad_inputs_get_one_clear_error(family):
    model = build(family)
    good = ids(model)
    cases = [(dict(input_ids=np.array([[1, model.config.vocab_size, -1]])), r"outside the vocabulary"),
             (dict(input_ids=good, attention_mask=np.ones((2, 5))), r"attention_mask has shape \(2, 5\)"),
             (dict(input_ids=good[0]), r"must have shape \(batch, seq\)")]
    longest = model.config.longest_input
    if longest is not None:
        cases.append((dict(input_ids=np.ones((1, longest + 1), np.int32)), "exceeds"))
    types = getattr(model.config, "type_vocab_size", None)
    if types is not None:                       # 0 (DeBERTa-v3): no table, only type 0
        cases.append((dict(input_ids=good, token_type_ids=np.full(good.shape, max(types, 1))),
                      r"token_type_ids outside"))
    for kwargs, message in cases:
        with pytest.raises(ValueError, match=message):
            model(**kwargs)
    with pytest.raises(TypeError, match="must be integers"):
        model(good.astype(np.float32))


def test_compiles_once_per_shape(family, monkeypatch):
    model = build(family)
    monkeypatch.setattr(model, "pad_to_multiple_of", None)   # every length as it is (bucketing: test_host.py)
    traces = []
    forward = type(model).forward
    monkeypatch.setattr(type(model), "forward", lambda self, *a, **k: traces.append(1) or forward(self, *a, **k))
    model(ids(model, (3, 5)))                                 # shapes no other test of this file runs
    model(ids(model, (3, 5), seed=1), attention_mask=np.ones((3, 5), np.int32))
    assert len(traces) == 1
    model(ids(model, (3, 7)))
    assert len(traces) == 2


def test_dropout_in_train_mode_only(family):
    model = build(family)
    batch = ids(model)
    np.testing.assert_array_equal(np.asarray(model(batch).logits), np.asarray(model(batch).logits))
    model.train()
    try:
        assert not np.allclose(np.asarray(model(batch).logits), np.asarray(model(batch).logits))
    finally:
        model.eval()
