"""Every file-format problem of a model directory is one CheckpointError naming the file and what is wrong; the
safetensors files minibert writes get the permissions every other file gets."""

import json
import os
import shutil
import stat

import numpy as np
import pytest
from safetensors.numpy import save_file

import minibert
from minibert.checkpoints.files import CheckpointError, read_state_dict, save_safetensors
from tests.conftest import save_reference

CONFIG = dict(vocab_size=64, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=24,
              max_position_embeddings=20)


@pytest.fixture(scope="module")
def reference_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("bert")
    save_reference("BertForMaskedLM", "BertConfig", path, **CONFIG)
    return path


@pytest.fixture
def copy(reference_dir, tmp_path):
    shutil.copytree(reference_dir, tmp_path / "model")
    return tmp_path / "model"


def _expect(path, file, message):
    with pytest.raises(CheckpointError, match=message) as error:
        minibert.from_pretrained(path)
    assert str(path / file) in str(error.value)


def test_truncated_safetensors_names_the_file(copy):
    weights = copy / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    _expect(copy, "model.safetensors", "not a readable safetensors weight file")


def test_garbage_safetensors_names_the_file(copy):
    (copy / "model.safetensors").write_bytes(b"\x00" * 7)
    _expect(copy, "model.safetensors", "truncated or corrupt")


def test_sharded_index_naming_a_missing_shard(copy):
    tensors = read_state_dict(copy)
    keys = sorted(tensors)
    save_file({k: tensors[k] for k in keys[:3]}, copy / "model-00001-of-00002.safetensors")
    index = {"metadata": {}, "weight_map": {k: "model-0000%d-of-00002.safetensors" % (1 if i < 3 else 2)
                                            for i, k in enumerate(keys)}}
    (copy / "model.safetensors").unlink()
    (copy / "model.safetensors.index.json").write_text(json.dumps(index))
    _expect(copy, "model.safetensors.index.json", "names shard\\(s\\) that are not in .*: model-00002-of-00002")
    (copy / "model.safetensors.index.json").write_text("{not json")
    _expect(copy, "model.safetensors.index.json", "is not valid JSON")
    (copy / "model.safetensors.index.json").write_text(json.dumps({"weight_map": ["a"]}))
    _expect(copy, "model.safetensors.index.json", "has no weight_map")


@pytest.mark.parametrize("text, message", [("{\"model_type\": \"bert\",", "is not valid JSON"),
                                           ("[1, 2]", "must hold a JSON object, got a list"),
                                           ("\"bert\"", "must hold a JSON object, got a str")])
def test_config_that_is_not_a_json_object(copy, text, message):
    (copy / "config.json").write_text(text)
    _expect(copy, "config.json", message)


def test_config_with_wrong_typed_fields(copy):
    values = json.loads((copy / "config.json").read_text())
    (copy / "config.json").write_text(json.dumps({**values, "hidden_size": "16", "layer_norm_eps": [1e-12]}))
    _expect(copy, "config.json", r"hidden_size must be int, got '16'; layer_norm_eps must be float, got \[1e-12\]")


def test_corrupt_pytorch_bin_names_the_file(copy):
    (copy / "model.safetensors").unlink()
    (copy / "pytorch_model.bin").write_bytes(b"garbage" * 10)
    _expect(copy, "pytorch_model.bin", "not a readable bin weight file")


def test_pytorch_bin_that_is_not_a_state_dict(copy):
    import torch

    (copy / "model.safetensors").unlink()
    torch.save([torch.zeros(2)], copy / "pytorch_model.bin")
    _expect(copy, "pytorch_model.bin", "does not hold a state dict of tensors")


def test_int8_weights_that_are_not_readable(copy):
    values = json.loads((copy / "config.json").read_text())
    (copy / "config.json").write_text(json.dumps({**values, "quantization_config": {"quant_method": "minibert_int8"}}))
    (copy / "model.int8.safetensors").write_bytes(np.zeros(3, np.uint8).tobytes())
    _expect(copy, "model.int8.safetensors", "not a readable safetensors weight file")


def mode(file) -> int:
    return stat.S_IMODE(os.stat(file).st_mode)


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_safetensors_are_written_with_the_mode_open_gives(tmp_path, umask):
    previous = os.umask(umask)
    try:
        save_safetensors({"w": np.arange(3, dtype=np.float32)}, tmp_path / "model.safetensors")
        (tmp_path / "config.json").write_text("{}")
    finally:
        os.umask(previous)
    assert mode(tmp_path / "model.safetensors") == mode(tmp_path / "config.json") == 0o666 & ~umask
    np.testing.assert_array_equal(read_state_dict(tmp_path)["w"], np.arange(3))


def test_an_overwritten_safetensors_file_keeps_its_mode(tmp_path):
    file = tmp_path / "model.safetensors"
    save_safetensors({"w": np.zeros(2, np.float32)}, file)
    os.chmod(file, 0o640)
    save_safetensors({"w": np.ones(2, np.float32)}, file)
    assert mode(file) == 0o640


def test_save_pretrained_and_quantize_write_readable_weights(reference_dir, tmp_path):
    """model.safetensors and model.int8.safetensors: 0o644 under the usual umask, like config.json beside them."""
    previous = os.umask(0o022)
    try:
        minibert.save_pretrained(minibert.from_pretrained(reference_dir), tmp_path / "saved")
        minibert.quantize_pretrained(tmp_path / "saved", tmp_path / "int8")
    finally:
        os.umask(previous)
    for file in ("saved/model.safetensors", "saved/config.json", "int8/model.int8.safetensors", "int8/config.json"):
        assert mode(tmp_path / file) == 0o644, file
