"""Post-training int8 quantization: the per-channel error bound, the saved format (≤ 30% of the float32 file),
dequantize-on-load for every family, `minibert quantize` with a dev-set evaluation, and the bad inputs."""

import json
import shutil

import jax.numpy as jnp
import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

import minibert
from minibert import presets
from minibert.checkpoints.hf import CheckpointError, model_state_dict
from minibert.cli import main
from minibert.models import auto, finetuning
from minibert.quantization import QUANTIZATION_CONFIG, dequantize, quantize, quantize_pretrained
from minibert.tokenization.tokenizer import WordPieceTokenizer

WORDS = ["good", "bad", "fine", "awful", "movie", "plot", "a", "the", "very", "not"]
MLM = dict(vocab_size=512, hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=256,
           max_position_embeddings=64)


def batch(vocab_size: int, seed: int = 0) -> dict:
    ids = np.random.default_rng(seed).integers(5, vocab_size, (2, 9))
    mask = np.ones_like(ids)
    mask[1, 6:] = 0
    return dict(input_ids=ids, attention_mask=mask, token_type_ids=np.zeros_like(ids))


def tokenizer() -> WordPieceTokenizer:
    return WordPieceTokenizer({t: i for i, t in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS])})


def within_half_a_step(weight, q, scale):
    """|w − q·S| ≤ S/2 elementwise, up to float32 rounding of w / S and q · S."""
    error = np.abs(weight - dequantize(q, scale))
    return np.all(error <= scale / 2 * (1 + 1e-5) + 1e-12)


# ---- quantize / dequantize ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(6, 40), (5, 3, 7)])
def test_error_is_at_most_half_a_step_of_its_own_channel(shape):
    rng = np.random.default_rng(0)
    sizes = 10.0 ** rng.uniform(-4, 2, (shape[0],) + (1,) * (len(shape) - 1))    # channels of very different sizes
    weight = (rng.standard_normal(shape) * sizes).astype(np.float32)
    q, scale = quantize(weight)
    assert q.dtype == np.int8 and q.shape == weight.shape and np.abs(q.astype(int)).max() <= 127
    assert scale.dtype == np.float32 and scale.shape == (shape[0],) + (1,) * (len(shape) - 1)
    per_channel = np.abs(q.astype(int)).reshape(shape[0], -1).max(1)
    assert np.all(per_channel == 127)                                # each channel spans its whole grid
    np.testing.assert_allclose(scale.ravel(), np.abs(weight).reshape(shape[0], -1).max(1) / 127, rtol=1e-6)
    assert dequantize(q, scale).dtype == np.float32
    assert within_half_a_step(weight, q, scale)


def test_values_on_the_grid_are_exact():
    rng = np.random.default_rng(1)
    steps = rng.integers(-127, 128, (4, 16))
    steps[:, 0] = [127, -127, 127, -127]                             # the largest |w| of each row is 127 steps
    weight = (steps * 2.0 ** -7).astype(np.float32)                  # a power-of-two step: exact in float32
    q, scale = quantize(weight)
    np.testing.assert_array_equal(q, steps)
    np.testing.assert_array_equal(dequantize(q, scale), weight)


def test_all_zero_rows_get_scale_one_and_stay_zero():
    weight = np.zeros((3, 2, 5), np.float32)
    weight[1] = 0.5
    q, scale = quantize(weight)
    np.testing.assert_array_equal(scale.ravel(), np.float32([1.0, 0.5 / 127, 1.0]))
    np.testing.assert_array_equal(dequantize(q, scale)[[0, 2]], 0.0)
    np.testing.assert_allclose(dequantize(q, scale)[1], 0.5, rtol=1e-6)


def test_one_axis_tensors_are_refused():
    with pytest.raises(ValueError, match=r"two or more axes, got shape \(8,\)"):
        quantize(np.ones(8, np.float32))


# ---- a quantized directory ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def bert(tmp_path_factory):
    """(float model, its directory, the quantized directory, the report) for a tiny BERT masked LM."""
    model = minibert.BertForMaskedLM(minibert.BertConfig(**MLM))
    model.eval()
    float_dir, int8_dir = tmp_path_factory.mktemp("float"), tmp_path_factory.mktemp("base") / "int8"
    minibert.save_pretrained(model, float_dir)
    tokenizer().save_pretrained(float_dir)
    return model, float_dir, int8_dir, quantize_pretrained(float_dir, int8_dir)


def test_the_int8_file_is_under_30_percent_of_the_float32_one(bert):
    _, float_dir, int8_dir, report = bert
    assert report.float_bytes == (float_dir / "model.safetensors").stat().st_size
    assert report.int8_bytes == (int8_dir / "model.int8.safetensors").stat().st_size
    assert report.ratio <= 0.30, report.ratio                        # measured 0.285 (H=64, vocab 512)


def test_the_saved_format(bert):
    _, float_dir, int8_dir, report = bert
    original, stored = load_file(float_dir / "model.safetensors"), load_file(int8_dir / "model.int8.safetensors")
    matrices = {k for k, v in original.items() if v.ndim >= 2}
    assert {row.key for row in report.quantized} == matrices and set(report.kept) == set(original) - matrices
    assert "bert.embeddings.word_embeddings.weight" in matrices
    assert set(stored) == set(original) | {k + "_scale" for k in matrices}
    for key, value in original.items():
        if key in matrices:
            assert stored[key].dtype == np.int8 and stored[key + "_scale"].dtype == np.float32
            assert stored[key + "_scale"].shape == (value.shape[0], 1)
            assert within_half_a_step(value, stored[key], stored[key + "_scale"]), key
        else:
            np.testing.assert_array_equal(stored[key], value)        # biases and norms: float32, untouched
    for row in report.quantized:
        assert row.max_abs_error <= row.bound * (1 + 1e-5) and row.relative_error <= 1 / 254 * (1 + 1e-5)
    config = json.loads((int8_dir / "config.json").read_text())
    assert config == json.loads((float_dir / "config.json").read_text()) | {"quantization_config": QUANTIZATION_CONFIG}
    for name in ("vocab.txt", "tokenizer_config.json", "special_tokens_map.json"):
        assert (int8_dir / name).read_bytes() == (float_dir / name).read_bytes()


def test_loading_dequantizes_to_the_rounded_float_model(bert, tmp_path):
    model, float_dir, int8_dir, _ = bert
    inputs = batch(MLM["vocab_size"])
    loaded = minibert.from_pretrained(int8_dir)
    rounded = minibert.from_pretrained(float_dir)
    for param in model_state_dict(rounded).values():
        if param.ndim >= 2:
            param.set_value(jnp.asarray(dequantize(*quantize(np.asarray(param[...])))))
    logits = np.asarray(loaded(**inputs).logits)
    np.testing.assert_allclose(logits, np.asarray(rounded(**inputs).logits), atol=1e-6, rtol=0)
    float_logits = np.asarray(model(**inputs).logits)
    assert np.abs(logits - float_logits).max() <= 0.02 * np.abs(float_logits).max()

    assert "quantization_config" not in loaded.config.extra          # the loaded model holds float32 weights
    minibert.save_pretrained(loaded, tmp_path)
    assert "quantization_config" not in json.loads((tmp_path / "config.json").read_text())
    assert all(v.dtype == np.float32 for v in load_file(tmp_path / "model.safetensors").values())
    np.testing.assert_array_equal(np.asarray(minibert.from_pretrained(tmp_path)(**inputs).logits), logits)


def test_a_sharded_directory_quantizes(bert, tmp_path):
    _, float_dir, int8_dir, _ = bert
    sharded, out = tmp_path / "sharded", tmp_path / "int8"
    sharded.mkdir()
    tensors = load_file(float_dir / "model.safetensors")
    keys = sorted(tensors)
    shards = {"model-00001-of-00002.safetensors": keys[::2], "model-00002-of-00002.safetensors": keys[1::2]}
    for name, names in shards.items():
        save_file({k: tensors[k] for k in names}, str(sharded / name), metadata={"format": "pt"})
    weight_map = {k: name for name, names in shards.items() for k in names}
    (sharded / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    shutil.copyfile(float_dir / "config.json", sharded / "config.json")
    report = quantize_pretrained(sharded, out)
    assert report.float_bytes == sum((sharded / name).stat().st_size for name in shards)
    inputs = batch(MLM["vocab_size"])
    np.testing.assert_array_equal(np.asarray(minibert.from_pretrained(out)(**inputs).logits),
                                  np.asarray(minibert.from_pretrained(int8_dir)(**inputs).logits))


@pytest.mark.parametrize("family", list(presets.FAMILIES))
def test_every_family_loads_and_runs_after_quantization(family, tmp_path):
    _, size = presets.preset(family, "tiny")
    model_class = auto.model_class_by_name(presets.FAMILIES[family].objectives["mlm"])
    model = model_class(model_class.config_class(**size, vocab_size=128, pad_token_id=0))
    model.eval()
    minibert.save_pretrained(model, tmp_path / "float")
    report = quantize_pretrained(tmp_path / "float", tmp_path / "int8")
    assert report.ratio <= 0.30, report.ratio
    loaded = minibert.from_pretrained(tmp_path / "int8")
    assert type(loaded) is model_class
    inputs = batch(128)
    logits, float_logits = np.asarray(loaded(**inputs).logits), np.asarray(model(**inputs).logits)
    assert np.all(np.isfinite(logits))
    assert np.abs(logits - float_logits).max() <= 0.05 * np.abs(float_logits).max()
    shapes = {row.key: row.shape for row in report.quantized}
    if family == "mobilebert":                                       # the raw, untransposed MLM weight
        assert shapes["cls.predictions.dense.weight"] == (size["hidden_size"] - size["embedding_size"], 128)
    if family == "convbert":                                         # convolution kernels (out, in/groups, k)
        assert any(len(shape) == 3 for shape in shapes.values())


# ---- the command line ----------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    """A random tiny BERT sentence classifier with labels neg/pos, and a dev TSV."""
    path = tmp_path_factory.mktemp("classifier")
    config = minibert.BertConfig(vocab_size=64, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                 intermediate_size=48, max_position_embeddings=32)
    finetuning.set_labels(config, ["neg", "pos"])
    model = finetuning.BertForSequenceClassification(config)
    minibert.save_pretrained(model, path)
    tokenizer().save_pretrained(path)
    rows = [("a very good movie", "pos"), ("the plot is awful", "neg"), ("not bad", "pos"), ("very bad", "neg"),
            ("a fine plot", "pos"), ("awful awful movie", "neg"), ("good", "pos"), ("the movie", "neg")]
    (path / "dev.tsv").write_text("sentence\tlabel\n" + "".join(f"{t}\t{l}\n" for t, l in rows), encoding="utf-8")
    return path


def test_cli_quantizes_and_scores_float_and_int8(classifier, tmp_path, capsys):
    out = tmp_path / "int8"
    assert main(["quantize", str(classifier), str(out), "--eval", str(classifier / "dev.tsv"), "--eval-limit", "6",
                 "--max-length", "16", "--eval-batch-size", "4"]) == 0
    printed = capsys.readouterr().out
    assert "quantized 11 tensors to int8" in printed and "MB float32 →" in printed and "largest error:" in printed
    assert "dev accuracy: float32 " in printed and "dev f1: float32 " in printed and " points)" in printed
    report = json.loads((out / "quantization_report.json").read_text())
    assert report["ratio"] == report["int8_bytes"] / report["float_bytes"]
    for name in ("float32", "int8"):
        assert 0 <= report["eval"][name]["accuracy"] <= 1
    change = report["eval"]["change_points"]["accuracy"]
    assert change == pytest.approx(100 * (report["eval"]["int8"]["accuracy"] - report["eval"]["float32"]["accuracy"]))
    assert report["eval"]["limit"] == 6
    loaded = minibert.from_pretrained(out)
    assert type(loaded).__name__ == "BertForSequenceClassification"
    assert finetuning.id2label(loaded.config) == {0: "neg", 1: "pos"}


def test_cli_eval_needs_a_classifier(classifier, bert, tmp_path):
    with pytest.raises(ValueError, match=r"needs a sequence-classification model, not BertForMaskedLM"):
        main(["quantize", str(bert[1]), str(tmp_path / "b"), "--eval", str(classifier / "dev.tsv")])


# ---- bad inputs ----------------------------------------------------------------------------------------------------

def test_bad_directories_are_refused(bert, tmp_path):
    _, float_dir, int8_dir, _ = bert
    with pytest.raises(FileNotFoundError, match=r"does not exist"):
        quantize_pretrained(tmp_path / "nowhere", tmp_path / "out")
    (tmp_path / "empty").mkdir()
    shutil.copyfile(float_dir / "config.json", tmp_path / "empty" / "config.json")
    with pytest.raises(FileNotFoundError, match=r"has no weights"):
        quantize_pretrained(tmp_path / "empty", tmp_path / "out")
    with pytest.raises(ValueError, match=r"already quantized \(config.json quantization_config"):
        quantize_pretrained(int8_dir, tmp_path / "out")
    with pytest.raises(ValueError, match=r"the output directory is the model directory"):
        quantize_pretrained(float_dir, float_dir / ".")


def _broken_copy(int8_dir, path, edit) -> None:
    shutil.copytree(int8_dir, path)
    tensors = load_file(path / "model.int8.safetensors")
    edit(tensors)
    save_file(tensors, str(path / "model.int8.safetensors"))


def test_an_incomplete_quantized_checkpoint_names_its_keys(bert, tmp_path):
    int8_dir = bert[2]
    _broken_copy(int8_dir, tmp_path / "a", lambda t: t.pop("bert.encoder.layer.1.output.dense.weight_scale"))
    with pytest.raises(CheckpointError, match=r"int8 tensors without a scale \(1\):\n  "
                                              r"bert.encoder.layer.1.output.dense.weight\b"):
        minibert.from_pretrained(tmp_path / "a")
    _broken_copy(int8_dir, tmp_path / "b", lambda t: t.pop("cls.predictions.transform.dense.weight"))
    with pytest.raises(CheckpointError, match=r"scales without their tensor \(1\):\n  "
                                              r"cls.predictions.transform.dense.weight_scale"):
        minibert.from_pretrained(tmp_path / "b")
    _broken_copy(int8_dir, tmp_path / "c", lambda t: t.pop("bert.embeddings.LayerNorm.bias"))
    _, info = minibert.from_pretrained(tmp_path / "c", output_loading_info=True)   # the usual loader's report
    assert info["missing_keys"] == ["bert.embeddings.LayerNorm.bias"]

    shutil.copytree(int8_dir, tmp_path / "d")
    config = json.loads((tmp_path / "d" / "config.json").read_text())
    config["quantization_config"] = {"quant_method": "gptq", "bits": 4}
    (tmp_path / "d" / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match=r"quant_method 'gptq': minibert reads only 'minibert_int8'"):
        minibert.from_pretrained(tmp_path / "d")


def test_transformers_refuses_the_int8_directory_instead_of_loading_integers(bert):
    transformers = pytest.importorskip("transformers")
    with pytest.raises(OSError, match=r"model.safetensors"):
        transformers.BertForMaskedLM.from_pretrained(bert[2])
