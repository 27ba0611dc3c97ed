"""Hugging Face directories: every file format, round trips both ways, and one clear error for bad checkpoints."""

import json
import logging
import shutil

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

import minibert
from minibert.checkpoints.hf import CheckpointError, model_state_dict
from minibert.models import auto, finetuning
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


def test_mis_shaped_weights_are_all_named_in_one_error(reference_dir, tmp_path):
    def edit(t):
        t["bert.encoder.layer.1.output.dense.bias"] = np.zeros(3, np.float32)
        t["bert.pooler.dense.weight"] = np.zeros((3, 3), np.float32)

    with pytest.raises(CheckpointError) as error:
        minibert.from_pretrained(_copy_with(reference_dir, tmp_path, edit))
    message = str(error.value)
    assert "mis-shaped (2)" in message and "ignore_mismatched_sizes=True" in message
    for name in ("bert.encoder.layer.1.output.dense.bias: checkpoint (3,), model (16,)",
                 "bert.pooler.dense.weight: checkpoint (3, 3), model (16, 16)"):
        assert name in message


# ---- what transformers loads, minibert loads: missing initialised, unexpected dropped, one warning -----------------

def _transformers_info(class_name, path, **kwargs):
    import transformers

    model, info = getattr(transformers, class_name).from_pretrained(path, output_loading_info=True, **kwargs)
    return model, info


def _unprefixed(keys, prefix="bert."):
    return {k.removeprefix(prefix) for k in keys}


def _assert_weights_equal(ours, theirs):
    """Every parameter minibert loaded equals transformers' tensor of the same name."""
    reference = {k: v.detach().numpy() for k, v in theirs.state_dict().items()}
    for key, param in model_state_dict(ours).items():
        np.testing.assert_array_equal(np.asarray(param[...]), reference[key], err_msg=key)


def test_pretraining_checkpoint_loads_as_masked_lm_with_one_warning(reference_dir, caplog):
    """The layout of the original bert-base checkpoints: pooler + NSP + MLM heads, read by BertForMaskedLM."""
    with caplog.at_level(logging.WARNING, logger="minibert"):
        ours, info = minibert.BertForMaskedLM.from_pretrained(reference_dir, output_loading_info=True)
    assert len(caplog.records) == 1 and "cls.seq_relationship.weight" in caplog.records[0].getMessage()
    theirs, expected = _transformers_info("BertForMaskedLM", reference_dir)
    assert set(info["unexpected_keys"]) == set(expected["unexpected_keys"]) == {
        "bert.pooler.dense.weight", "bert.pooler.dense.bias", "cls.seq_relationship.weight", "cls.seq_relationship.bias"}
    assert info["missing_keys"] == [] and info["mismatched_keys"] == [] and info["error_msgs"] == []
    _assert_weights_equal(ours, theirs)
    batch = padded_batch(CONFIG["vocab_size"], 2, 9, CONFIG["type_vocab_size"])
    mask = batch["attention_mask"].astype(bool)
    np.testing.assert_allclose(np.asarray(ours(**batch).logits)[mask],
                               torch_outputs(theirs.eval(), batch).logits.numpy()[mask], atol=1e-5)


def test_fill_mask_and_parity_run_on_the_original_bert_base_layout(reference_dir, tmp_path, capsys):
    """config.json says BertForMaskedLM, the weights hold the pooler and the NSP head too (bert-base-uncased)."""
    from minibert.cli import main

    shutil.copyfile(reference_dir / "model.safetensors", tmp_path / "model.safetensors")
    config = json.loads((reference_dir / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, "architectures": ["BertForMaskedLM"]}))
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(CONFIG["vocab_size"] - 5)]
    (tmp_path / "vocab.txt").write_text("\n".join(words) + "\n")
    assert main(["fill-mask", "--model", str(tmp_path), "w1 [MASK] w2"]) == 0
    assert main(["parity", str(tmp_path), "--seq-len", "8"]) == 0
    assert "w" in capsys.readouterr().out


@pytest.mark.parametrize("class_name", ["BertForMaskedLM", "BertForPreTraining", "BertForSequenceClassification",
                                        "BertForTokenClassification", "BertForQuestionAnswering",
                                        "BertForMultipleChoice"])
def test_bare_encoder_loads_into_a_head_class_with_the_head_initialised(class_name, tmp_path):
    save_reference("BertModel", "BertConfig", tmp_path, **CONFIG)
    ours, info = minibert.from_pretrained(tmp_path, model_class=auto.model_class_by_name(class_name),
                                          output_loading_info=True)
    theirs, expected = _transformers_info(class_name, tmp_path)
    tied = {"cls.predictions.decoder.bias"}   # transformers' tied alias of cls.predictions.bias, no parameter here
    assert set(info["missing_keys"]) == set(expected["missing_keys"]) - tied and info["missing_keys"]
    assert _unprefixed(info["unexpected_keys"]) == set(expected["unexpected_keys"])
    params = model_state_dict(ours)
    for key, value in load_file(tmp_path / "model.safetensors").items():
        if "bert." + key in params:                       # every encoder weight (a pooler too, where the class has one)
            np.testing.assert_array_equal(np.asarray(params["bert." + key][...]), value, err_msg=key)
    assert not any(k.startswith("bert.encoder") for k in info["missing_keys"])


def test_head_checkpoint_without_pooler_loads_as_bare_encoder(tmp_path):
    save_reference("BertForMaskedLM", "BertConfig", tmp_path, **CONFIG)
    ours, info = minibert.BertModel.from_pretrained(tmp_path, output_loading_info=True)
    theirs, expected = _transformers_info("BertModel", tmp_path)
    assert set(info["missing_keys"]) == set(expected["missing_keys"]) == {"pooler.dense.weight", "pooler.dense.bias"}
    assert set(info["unexpected_keys"]) == set(expected["unexpected_keys"])
    np.testing.assert_array_equal(np.asarray(ours.embeddings.word_embeddings.weight[...]),
                                  theirs.embeddings.word_embeddings.weight.detach().numpy())


def test_num_labels_override_needs_ignore_mismatched_sizes(tmp_path):
    save_reference("BertForSequenceClassification", "BertConfig", tmp_path, **CONFIG)
    with pytest.raises(CheckpointError, match=r"classifier.weight: checkpoint \(2, 16\), model \(5, 16\)"):
        minibert.from_pretrained(tmp_path, num_labels=5)
    ours, info = minibert.from_pretrained(tmp_path, num_labels=5, ignore_mismatched_sizes=True,
                                          output_loading_info=True)
    theirs, expected = _transformers_info("BertForSequenceClassification", tmp_path, num_labels=5,
                                          ignore_mismatched_sizes=True)
    assert set(info["mismatched_keys"]) == {(k, tuple(c), tuple(m)) for k, c, m in expected["mismatched_keys"]}
    assert finetuning.id2label(ours.config) == theirs.config.id2label == {i: f"LABEL_{i}" for i in range(5)}
    assert ours.classifier.weight.shape == (5, 16)
    model = minibert.from_pretrained(tmp_path, id2label={0: "neg", 1: "pos"}, problem_type="single_label_classification")
    assert finetuning.id2label(model.config) == {0: "neg", 1: "pos"}
    assert model.config.problem_type == "single_label_classification"


def test_recomputed_buffers_are_ignored_wherever_they_appear(reference_dir, tmp_path):
    positions = np.arange(CONFIG["max_position_embeddings"])[None]
    path = _copy_with(reference_dir, tmp_path, lambda t: t.update({
        "bert.embeddings.position_ids": positions, "bert.embeddings.token_type_ids": np.zeros_like(positions),
        "bert.encoder.layer.0.attention.self.rotary_emb.inv_freq": np.ones(4, np.float32)}))
    _, info = minibert.from_pretrained(path, output_loading_info=True)
    assert info == {"missing_keys": [], "unexpected_keys": [], "mismatched_keys": [], "error_msgs": []}


def test_a_checkpoint_without_the_encoder_is_an_error(reference_dir, tmp_path):
    path = _copy_with(reference_dir, tmp_path, lambda t: [t.pop(k) for k in list(t) if k.startswith("bert.")])
    with pytest.raises(CheckpointError, match="holds none of BertForPreTraining's encoder weights"):
        minibert.from_pretrained(path)


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
