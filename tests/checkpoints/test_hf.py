"""Hugging Face directories: every file format, round trips both ways, and one clear error for bad checkpoints."""

import json

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

import minibert
from minibert.checkpoints.hf import CheckpointError
from tests.conftest import padded_batch, save_reference, torch_outputs

CONFIG = dict(vocab_size=64, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=24,
              type_vocab_size=3, max_position_embeddings=20)


@pytest.fixture(scope="module")
def reference_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("bert-pretraining")
    save_reference("BertForPreTraining", "BertConfig", path, **CONFIG)
    return path


def test_hf_to_minibert_to_hf_is_byte_identical(reference_dir, tmp_path):
    minibert.save_pretrained(minibert.from_pretrained(reference_dir), tmp_path)
    original, ours = load_file(reference_dir / "model.safetensors"), load_file(tmp_path / "model.safetensors")
    assert set(original) == set(ours)
    for key in original:
        assert original[key].dtype == ours[key].dtype and original[key].tobytes() == ours[key].tobytes(), key


@pytest.mark.parametrize("model_class", ["BertModel", "BertForMaskedLM", "BertForPreTraining"])
def test_transformers_loads_minibert_without_key_warnings(model_class, tmp_path):
    import transformers

    config = minibert.BertConfig(**CONFIG)
    model = getattr(minibert, model_class)(config)
    model.eval()
    minibert.save_pretrained(model, tmp_path)
    reference, info = getattr(transformers, model_class).from_pretrained(tmp_path, output_loading_info=True)
    assert not any(info[k] for k in ("missing_keys", "unexpected_keys", "mismatched_keys")), info
    batch = padded_batch(CONFIG["vocab_size"], 2, 9, CONFIG["type_vocab_size"])
    ours, theirs = model(**batch), torch_outputs(reference.eval(), batch)
    mask = batch["attention_mask"].astype(bool)
    if model_class == "BertModel":
        np.testing.assert_allclose(np.asarray(ours.pooler_output), theirs.pooler_output.numpy(), atol=1e-5)
    else:
        logits = theirs.logits if model_class == "BertForMaskedLM" else theirs.prediction_logits
        np.testing.assert_allclose(np.asarray(ours.logits)[mask], logits.numpy()[mask], atol=1e-5)


def _logits(path):
    batch = padded_batch(CONFIG["vocab_size"], 2, 8, CONFIG["type_vocab_size"])
    return np.asarray(minibert.from_pretrained(path)(**batch).logits)


def test_sharded_safetensors(reference_dir, tmp_path):
    import transformers

    transformers.BertForPreTraining.from_pretrained(reference_dir).save_pretrained(tmp_path, max_shard_size="20KB")
    assert (tmp_path / "model.safetensors.index.json").is_file()
    np.testing.assert_array_equal(_logits(tmp_path), _logits(reference_dir))


def test_pytorch_bin_and_legacy_names(reference_dir, tmp_path):
    import torch

    tensors = load_file(reference_dir / "model.safetensors")
    legacy = {k.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta"): v
              for k, v in tensors.items()}
    legacy["bert.embeddings.position_ids"] = np.arange(CONFIG["max_position_embeddings"])[None]
    legacy["cls.predictions.decoder.weight"] = tensors["bert.embeddings.word_embeddings.weight"]
    torch.save({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in legacy.items()}, tmp_path / "pytorch_model.bin")
    (tmp_path / "config.json").write_text((reference_dir / "config.json").read_text())
    np.testing.assert_array_equal(_logits(tmp_path), _logits(reference_dir))


def test_bare_encoder_loads_from_a_checkpoint_with_heads(reference_dir):
    model = minibert.BertModel.from_pretrained(reference_dir)
    full = minibert.from_pretrained(reference_dir)
    np.testing.assert_array_equal(np.asarray(model.embeddings.word_embeddings.weight[...]),
                                  np.asarray(full.bert.embeddings.word_embeddings.weight[...]))


def _copy_with(reference_dir, tmp_path, edit):
    tensors = load_file(reference_dir / "model.safetensors")
    edit(tensors)
    save_file(tensors, tmp_path / "model.safetensors", metadata={"format": "pt"})
    (tmp_path / "config.json").write_text((reference_dir / "config.json").read_text())
    return tmp_path


def test_bad_weights_are_all_named_in_one_error(reference_dir, tmp_path):
    def edit(t):
        del t["cls.seq_relationship.weight"]
        del t["bert.encoder.layer.1.output.dense.bias"]
        t["bert.encoder.layer.9.output.dense.bias"] = np.zeros(3, np.float32)
        t["bert.pooler.dense.weight"] = np.zeros((3, 3), np.float32)

    with pytest.raises(CheckpointError) as error:
        minibert.from_pretrained(_copy_with(reference_dir, tmp_path, edit))
    message = str(error.value)
    for name in ("cls.seq_relationship.weight (2, 16)", "bert.encoder.layer.1.output.dense.bias (16,)",
                 "bert.encoder.layer.9.output.dense.bias (3,)",
                 "bert.pooler.dense.weight: checkpoint (3, 3), model (16, 16)"):
        assert name in message
    assert "missing (2)" in message and "unexpected (1)" in message and "mis-shaped (1)" in message


def test_missing_head_is_an_error_not_a_random_init(tmp_path):
    save_reference("BertModel", "BertConfig", tmp_path, **CONFIG)
    with pytest.raises(CheckpointError, match=r"cls\.predictions\.bias"):
        minibert.BertForMaskedLM.from_pretrained(tmp_path)


def test_directory_and_config_errors(reference_dir, tmp_path):
    with pytest.raises(FileNotFoundError, match="no config.json"):
        minibert.from_pretrained(tmp_path)
    config = json.loads((reference_dir / "config.json").read_text())
    for change, message in (({"model_type": "gpt9"}, "unknown model_type 'gpt9'"),
                            ({"architectures": ["BertForTeleportation"]}, "unknown architecture 'BertForTeleportation'")):
        (tmp_path / "config.json").write_text(json.dumps({**config, **change}))
        with pytest.raises(ValueError, match=message):
            minibert.from_pretrained(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(FileNotFoundError, match="has no weights"):
        minibert.from_pretrained(tmp_path)


def test_config_round_trip_keeps_unknown_keys(reference_dir):
    values = json.loads((reference_dir / "config.json").read_text())
    config = minibert.BertConfig.from_dict(values)
    assert config.type_vocab_size == 3 and config.extra["transformers_version"] == values["transformers_version"]
    assert config.to_dict() == {**values, "architectures": ["BertForPreTraining"]}
