"""What every family promises, written once over a table of families: a checkpoint round trip (transformers →
minibert → transformers, the same tensors byte for byte), the `minibert parity` command, clear input errors,
one compilation per input shape, and dropout in train mode only. Each family's own file tests its parity."""

import numpy as np
import pytest

import minibert
from minibert.checkpoints.files import read_state_dict
from minibert.cli import main
from tests.conftest import save_reference

MODERN_TOKENS = dict(pad_token_id=0, bos_token_id=1, eos_token_id=2, cls_token_id=1, sep_token_id=2)
# family → its masked LM's config: tiny, with dropout (ModernBERT's defaults have none)
FAMILIES = {
    "Bert": dict(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
                 max_position_embeddings=24, type_vocab_size=3),
    "MobileBert": dict(vocab_size=99, hidden_size=32, embedding_size=16, intra_bottleneck_size=16,
                       num_attention_heads=4, intermediate_size=24, num_hidden_layers=2, max_position_embeddings=24,
                       num_feedforward_networks=2),
    "ConvBert": dict(vocab_size=99, hidden_size=32, embedding_size=16, num_hidden_layers=2, num_attention_heads=4,
                     intermediate_size=37, conv_kernel_size=3, max_position_embeddings=24),
    "Electra": dict(vocab_size=99, embedding_size=16, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                    intermediate_size=37, max_position_embeddings=24),
    "Roberta": dict(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
                    type_vocab_size=1, max_position_embeddings=26, layer_norm_eps=1e-5),
    "ModernBert": dict(vocab_size=99, hidden_size=32, intermediate_size=40, num_hidden_layers=2, num_attention_heads=4,
                       local_attention=8, global_attn_every_n_layers=2, max_position_embeddings=24,
                       embedding_dropout=0.1, **MODERN_TOKENS),
}
LONGEST = 24  # every family's longest input (RoBERTa's table holds 24 after its padding offset)


@pytest.fixture(scope="module", params=list(FAMILIES))
def family(request, tmp_path_factory):
    """(family, reference directory, minibert's model of it in eval mode)."""
    path = tmp_path_factory.mktemp(request.param)
    save_reference(f"{request.param}ForMaskedLM", f"{request.param}Config", path, **FAMILIES[request.param])
    model = minibert.from_pretrained(path)
    return request.param, path, model


def ids(model, batch: int = 2, seq: int = 6, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(3, model.config.vocab_size, (batch, seq))


def test_checkpoints_round_trip_byte_for_byte(family, tmp_path):
    """transformers' directory → minibert → save: the same tensors, byte for byte; transformers loads that save
    without a missing, unexpected or mis-shaped key."""
    import transformers

    name, path, model = family
    model.save_pretrained(tmp_path)
    original, saved = read_state_dict(path), read_state_dict(tmp_path)
    assert set(saved) == set(original)
    for key, value in original.items():
        assert saved[key].dtype == value.dtype and saved[key].tobytes() == value.tobytes(), key
    _, info = getattr(transformers, f"{name}ForMaskedLM").from_pretrained(tmp_path, output_loading_info=True)
    assert not any(info[k] for k in ("missing_keys", "unexpected_keys", "mismatched_keys")), info


def test_parity_command_passes(family, capsys):
    _, path, _ = family
    assert main(["parity", str(path), "--seq-len", "8"]) == 0
    assert "PASS" in capsys.readouterr().out


def test_bad_inputs_get_clear_errors(family):
    name, _, model = family
    good = ids(model)
    cases = [
        (dict(input_ids=ids(model, seq=LONGEST + 1)), "exceeds"),
        (dict(input_ids=np.array([[1, 99, -1]])), r"outside the vocabulary \[0, 99\): \[-1, 99\]"),
        (dict(input_ids=good, attention_mask=np.ones((2, 5))), r"attention_mask has shape \(2, 5\)"),
        (dict(input_ids=good, token_type_ids=np.ones((6,), np.int32)), r"token_type_ids has shape \(6,\)"),
        (dict(input_ids=good[0]), r"must have shape \(batch, seq\)"),
        (dict(input_ids=good, token_type_ids=np.full(good.shape, 3)),
         "no token types" if name == "ModernBert" else r"token_type_ids outside \[0, "),
    ]
    for kwargs, message in cases:
        with pytest.raises(ValueError, match=message):
            model(**kwargs)
    with pytest.raises(TypeError, match="must be integers"):
        model(good.astype(np.float32))


def test_compiles_once_per_shape(family, monkeypatch):
    _, _, model = family
    traces = []
    forward = type(model).forward
    monkeypatch.setattr(type(model), "forward", lambda self, *a, **k: traces.append(1) or forward(self, *a, **k))
    monkeypatch.setattr(model, "pad_to_multiple_of", None)    # every length as it is (bucketing: test_host.py)
    model(ids(model))
    model(ids(model, seed=1), attention_mask=np.ones((2, 6)))
    assert len(traces) == 1
    model(ids(model, seq=7))
    assert len(traces) == 2


def test_dropout_in_train_mode_only(family):
    _, _, model = family
    batch = ids(model)
    np.testing.assert_array_equal(model(batch).logits, model(batch).logits)
    model.train()
    try:
        assert not np.allclose(model(batch).logits, model(batch).logits)
    finally:
        model.eval()
