"""MosaicBERT against a NumPy reference written from the paper's equations (float64, loops), loading the
reference code's state-dict names, unpadding, packed documents, ALiBi extrapolation, save/load, bf16."""

import json
import math

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from safetensors.numpy import load_file, save_file

import minibert
from minibert.checkpoints.hf import load_state_dict, model_state_dict, read_state_dict
from minibert.models.mosaicbert import MosaicBertConfig, MosaicBertForMaskedLM, MosaicBertModel
from minibert.nn.norms import set_low_precision_layernorm
from minibert.nn.packing import set_token_capacity
from tests.conftest import padded_batch

# 6 heads: not a power of two, so the slopes take the paper's second rule; eps ≠ the head's fixed 1e-12.
CONFIG = dict(vocab_size=61, hidden_size=24, num_hidden_layers=2, num_attention_heads=6, intermediate_size=20,
              type_vocab_size=3, layer_norm_eps=1e-6)
BUILT_FOR = 16   # the reference config's max_position_embeddings / alibi_starting_size; we also run longer


# ---------------------------------------------------------------- NumPy reference (independent of minibert)

def np_slopes(n):
    """Press et al. 2022, §3: 2^(−8/n)·k for k = 1..n when n is a power of two; otherwise the closest lower
    power of two's slopes plus every other slope of twice that many heads."""
    def power_of_two(n):
        return [2.0 ** (-8.0 * k / n) for k in range(1, n + 1)]
    if math.log2(n).is_integer():
        return power_of_two(n)
    p = 2 ** math.floor(math.log2(n))
    return power_of_two(p) + power_of_two(2 * p)[0::2][: n - p]


def np_layer_norm(x, w, b, eps):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * w + b


_erf = np.vectorize(math.erf)


def np_gelu(x):
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))


def np_linear(x, sd, name, bias=True):
    y = x @ sd[name + ".weight"].T
    return y + sd[name + ".bias"] if bias else y


def np_attention(x, real, sd, p, cfg):
    """One layer's attention probabilities (heads, seq, seq) and values (seq, hidden) on one sequence x (seq, hidden);
    `real` (seq,) 0/1; p = 'bert.encoder.layer.N.'."""
    seq, hidden = x.shape
    heads = cfg["num_attention_heads"]
    d = hidden // heads
    qkv = np_linear(x, sd, p + "attention.self.Wqkv")
    q, k, v = qkv[:, :hidden], qkv[:, hidden:2 * hidden], qkv[:, 2 * hidden:]
    slopes = np_slopes(heads)
    probs = np.zeros((heads, seq, seq))
    for h in range(heads):
        cols = slice(h * d, (h + 1) * d)
        for i in range(seq):
            scores = np.array([q[i, cols] @ k[j, cols] / math.sqrt(d) - slopes[h] * abs(i - j)
                               - 10000.0 * (1 - real[j]) for j in range(seq)])       # ALiBi + padding (−10000)
            probs[h, i] = np.exp(scores - scores.max())
            probs[h, i] /= probs[h, i].sum()
    return probs, v


def np_layer(x, real, sd, p, cfg):
    """One MosaicBERT layer on one sequence x (seq, hidden); `real` (seq,) 0/1; p = 'bert.encoder.layer.N.'."""
    seq, hidden = x.shape
    d = hidden // cfg["num_attention_heads"]
    probs, v = np_attention(x, real, sd, p, cfg)
    attended = np.zeros((seq, hidden))
    for h, head_probs in enumerate(probs):
        attended[:, h * d:(h + 1) * d] = head_probs @ v[:, h * d:(h + 1) * d]
    eps = cfg["layer_norm_eps"]
    h1 = np_layer_norm(x + np_linear(attended, sd, p + "attention.output.dense"),
                       sd[p + "attention.output.LayerNorm.weight"], sd[p + "attention.output.LayerNorm.bias"], eps)
    inter = cfg["intermediate_size"]
    g = np_linear(h1, sd, p + "mlp.gated_layers", bias=False)
    ffn = np_linear(np_gelu(g[:, :inter]) * g[:, inter:], sd, p + "mlp.wo")       # GeGLU: GELU(first) · second
    return np_layer_norm(h1 + ffn, sd[p + "mlp.layernorm.weight"], sd[p + "mlp.layernorm.bias"], eps)


def np_model(sd, batch, cfg):
    """Embeddings → layers → MLM logits, row by row on the padded batch: (states per layer, logits)."""
    ids, real = batch["input_ids"], batch["attention_mask"]
    types = batch.get("token_type_ids", np.zeros_like(ids))
    eps = cfg["layer_norm_eps"]
    states, logits = [], []
    for n in range(ids.shape[0]):
        x = (sd["bert.embeddings.word_embeddings.weight"][ids[n]]
             + sd["bert.embeddings.token_type_embeddings.weight"][types[n]])
        x = np_layer_norm(x, sd["bert.embeddings.LayerNorm.weight"], sd["bert.embeddings.LayerNorm.bias"], eps)
        row = [x]
        for layer in range(cfg["num_hidden_layers"]):
            x = np_layer(x, real[n], sd, f"bert.encoder.layer.{layer}.", cfg)
            row.append(x)
        states.append(row)
        if "cls.predictions.decoder.bias" in sd:
            t = np_gelu(np_linear(x, sd, "cls.predictions.transform.dense"))
            t = np_layer_norm(t, sd["cls.predictions.transform.LayerNorm.weight"],
                              sd["cls.predictions.transform.LayerNorm.bias"], 1e-12)
            logits.append(t @ sd["bert.embeddings.word_embeddings.weight"].T + sd["cls.predictions.decoder.bias"])
    return [np.stack(s) for s in zip(*states)], (np.stack(logits) if logits else None)


def reference_state_dict(cfg, seed=0):
    """A state dict with the MosaicBERT reference code's key names, built by hand, random values."""
    rng = np.random.default_rng(seed)
    h, inter = cfg["hidden_size"], cfg["intermediate_size"]
    shapes = {"bert.embeddings.word_embeddings.weight": (cfg["vocab_size"], h),
              "bert.embeddings.token_type_embeddings.weight": (cfg["type_vocab_size"], h)}
    norms = ["bert.embeddings.LayerNorm", "cls.predictions.transform.LayerNorm"]
    for n in range(cfg["num_hidden_layers"]):
        p = f"bert.encoder.layer.{n}."
        shapes |= {p + "attention.self.Wqkv.weight": (3 * h, h), p + "attention.self.Wqkv.bias": (3 * h,),
                   p + "attention.output.dense.weight": (h, h), p + "attention.output.dense.bias": (h,),
                   p + "mlp.gated_layers.weight": (2 * inter, h), p + "mlp.wo.weight": (h, inter), p + "mlp.wo.bias": (h,)}
        norms += [p + "attention.output.LayerNorm", p + "mlp.layernorm"]
    shapes |= {"cls.predictions.transform.dense.weight": (h, h), "cls.predictions.transform.dense.bias": (h,),
               "cls.predictions.decoder.bias": (cfg["vocab_size"],)}
    sd = {k: (0.3 * rng.standard_normal(s)).astype(np.float32) for k, s in shapes.items()}
    # Word embeddings at BERT-like scale (std 0.1) keep the logits O(1), where float32 rounding is ≲ 5e-6.
    sd["bert.embeddings.word_embeddings.weight"] *= np.float32(1 / 3)
    for name in norms:
        sd[name + ".weight"] = (1 + 0.2 * rng.standard_normal(h)).astype(np.float32)
        sd[name + ".bias"] = (0.2 * rng.standard_normal(h)).astype(np.float32)
    return sd


# ---------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A directory as the reference code would leave it (plus our model_type): its keys, its extra config."""
    path = tmp_path_factory.mktemp("mosaic-reference")
    sd = reference_state_dict(CONFIG)
    on_disk = {**sd, "cls.predictions.decoder.weight": sd["bert.embeddings.word_embeddings.weight"]}  # tied copy
    save_file(on_disk, str(path / "model.safetensors"), metadata={"format": "pt"})
    config = {**CONFIG, "model_type": "mosaic_bert", "architectures": ["MosaicBertForMaskedLM"],
              "alibi_starting_size": BUILT_FOR, "max_position_embeddings": BUILT_FOR,
              "position_embedding_type": "absolute", "hidden_act": "gelu"}
    (path / "config.json").write_text(json.dumps(config))
    return path, {k: v.astype(np.float64) for k, v in sd.items()}


@pytest.fixture(scope="module")
def mlm(checkpoint):
    return minibert.from_pretrained(checkpoint[0])


def run(model, batch, labels=None):
    """Every call the same way (hidden states, labels), so that each input shape compiles once."""
    labels = np.full(batch["input_ids"].shape, -100) if labels is None else labels
    return model(**{"token_type_ids": np.zeros_like(batch["input_ids"]), **batch}, labels=labels,
                 output_hidden_states=True)


def batch_of(batch_size, seq):
    return padded_batch(CONFIG["vocab_size"], batch_size, seq, type_vocab_size=CONFIG["type_vocab_size"], seed=seq)


LABELS = np.full((3, 12), -100)
LABELS[0, [1, 4]], LABELS[2, 2] = [3, 9], 5


@pytest.fixture(scope="module")
def batch3x12(mlm):
    """The (3, 12) padded batch (rows of 12, 8 and 4 real tokens), our float32 outputs on it, with labels."""
    batch = batch_of(3, 12)
    return batch, run(mlm, batch, LABELS)


def real_positions(mask):
    return np.asarray(mask) > 0


# ---------------------------------------------------------------- NumPy reference

@pytest.mark.parametrize("shape", [(1, 5), (3, 12), (2, 3 * BUILT_FOR)], ids=["1x5", "3x12", "2x48-longer-than-built"])
def test_mlm_matches_numpy_reference(checkpoint, mlm, batch3x12, shape):
    """Every hidden state and the logits, at real tokens, ≤ 1e-5; the last shape is 3× the built-for length
    (ALiBi extrapolates: nothing in the model depends on a maximum length)."""
    _, sd = checkpoint
    batch, ours = batch3x12 if shape == (3, 12) else (batch_of(*shape), run(mlm, batch_of(*shape)))
    states, logits = np_model(sd, batch, CONFIG)
    real = real_positions(batch["attention_mask"])
    assert isinstance(mlm, MosaicBertForMaskedLM) and len(ours.hidden_states) == CONFIG["num_hidden_layers"] + 1
    for i, (a, b) in enumerate(zip(ours.hidden_states, states)):
        np.testing.assert_allclose(np.asarray(a)[real], b[real], atol=1e-5, rtol=0, err_msg=f"hidden state {i}")
    np.testing.assert_allclose(np.asarray(ours.logits)[real], logits[real], atol=1e-5, rtol=0, err_msg="logits")
    assert not np.asarray(ours.logits)[~real].any(), "padding positions are zeros"


def test_one_layer_matches_numpy_reference(checkpoint, batch3x12):
    """Layer 1 alone: the NumPy layer applied to our layer-0 output gives our layer-1 output."""
    _, sd = checkpoint
    batch, ours = batch3x12
    states = ours.hidden_states
    for n, real in enumerate(batch["attention_mask"]):
        expected = np_layer(np.asarray(states[1][n], np.float64), real, sd, "bert.encoder.layer.1.", CONFIG)
        np.testing.assert_allclose(np.asarray(states[2][n])[real > 0], expected[real > 0], atol=1e-5, rtol=0)


@pytest.mark.parametrize("capacity", [None, 24], ids=["capacity-batch*seq", "capacity-real-tokens"])
def test_attentions_match_numpy_reference(checkpoint, mlm, batch3x12, capacity):
    """`output_attentions=True` (unpadded, and with fused attention asked for): each layer's probabilities
    (batch, heads, seq, seq), those of the NumPy layer on our hidden states, from every real query; padded keys
    get probability 0."""
    from minibert.nn.attention import set_attention_implementation

    _, sd = checkpoint
    batch, _ = batch3x12
    set_token_capacity(mlm, capacity)
    set_attention_implementation(mlm, "fused")
    try:
        ours = mlm(**batch, output_attentions=True, output_hidden_states=True)
    finally:
        set_token_capacity(mlm, None)
        set_attention_implementation(mlm, "reference")
    assert ours.keys() == ("logits", "hidden_states", "attentions") and len(ours.attentions) == 2
    for layer, attentions in enumerate(ours.attentions):
        assert attentions.shape == (3, CONFIG["num_attention_heads"], 12, 12)
        for n, real in enumerate(batch["attention_mask"]):
            x = np.asarray(ours.hidden_states[layer][n], np.float64)
            expected, _ = np_attention(x, real, sd, f"bert.encoder.layer.{layer}.", CONFIG)
            got = np.asarray(attentions[n])[:, real > 0]                                 # real queries
            np.testing.assert_allclose(got, expected[:, real > 0], atol=1e-5, rtol=0, err_msg=f"layer {layer}")
            assert not got[..., real == 0].any()


def test_inputs_embeds_is_refused(mlm):
    """There is no MosaicBERT in transformers to take `inputs_embeds` as: a clear error, not a guess."""
    with pytest.raises(ValueError, match="does not take inputs_embeds"):
        mlm(inputs_embeds=np.zeros((1, 4, CONFIG["hidden_size"]), np.float32))


def test_masked_lm_loss(batch3x12):
    _, ours = batch3x12
    logits = np.asarray(ours.logits, np.float64)
    picked = [(0, 1, 3), (0, 4, 9), (2, 2, 5)]
    expected = np.mean([np.log(np.exp(logits[b, s]).sum()) - logits[b, s, t] for b, s, t in picked])
    np.testing.assert_allclose(float(ours.loss), expected, atol=1e-5)


def test_bare_model_with_pooler_loads_the_mlm_checkpoint(checkpoint, batch3x12):
    """MosaicBertModel reads the `bert.`-prefixed keys (the generic loader strips the prefix, drops the head);
    its last hidden state and pooler match the NumPy reference."""
    path, sd = checkpoint
    rng = np.random.default_rng(1)
    h = CONFIG["hidden_size"]
    pooler = {"bert.pooler.dense.weight": 0.3 * rng.standard_normal((h, h)),
              "bert.pooler.dense.bias": 0.3 * rng.standard_normal(h)}
    model = MosaicBertModel(MosaicBertConfig(**CONFIG), rngs=nnx.Rngs(3))
    load_state_dict(model, {**read_state_dict(path), **pooler})
    model.eval()
    batch, mlm_out = batch3x12
    out = model(**batch)
    real = real_positions(batch["attention_mask"])
    # the same up to float32 rounding: this call runs bucketed (models/host.py), the MLM's (with labels) as given
    np.testing.assert_allclose(np.asarray(out.last_hidden_state)[real], np.asarray(mlm_out.last_hidden_state)[real],
                               atol=1e-5, rtol=0)
    states, _ = np_model(sd, batch, CONFIG)
    np.testing.assert_allclose(np.asarray(out.last_hidden_state)[real], states[-1][real], atol=1e-5, rtol=0)
    pooled = np.tanh(states[-1][:, 0] @ pooler["bert.pooler.dense.weight"].T + pooler["bert.pooler.dense.bias"])
    np.testing.assert_allclose(np.asarray(out.pooler_output), pooled, atol=1e-5, rtol=0)


# ---------------------------------------------------------------- unpadding and packing

def test_unpadded_equals_padded_at_real_tokens(checkpoint, batch3x12):
    """The padded batch (unpadded inside the model) == each row alone with no padding at all (NumPy)."""
    _, sd = checkpoint
    batch, ours = batch3x12
    for n, length in enumerate(batch["attention_mask"].sum(1)):
        alone = {k: v[n:n + 1, :length] for k, v in batch.items()}
        states, logits = np_model(sd, alone, CONFIG)
        np.testing.assert_allclose(np.asarray(ours.last_hidden_state)[n, :length], states[-1][0], atol=1e-5, rtol=0)
        np.testing.assert_allclose(np.asarray(ours.logits)[n, :length], logits[0], atol=1e-5, rtol=0)


HOLED = np.array([[1, 1, 0, 1, 1, 1, 1, 0, 1, 1, 1, 1],     # holes: a 0/1 mask hides tokens, nothing else
                  [0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1],     # left padding
                  [1, 1, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0]])    # a hole, then right padding


@pytest.mark.parametrize("capacity", [None, int(HOLED.sum())], ids=["capacity-batch*seq", "capacity-real-tokens"])
def test_holed_mask_matches_numpy_reference_with_index_positions(checkpoint, mlm, capacity):
    """A 0/1 mask with holes (and left padding): every hidden state and the logits at visible tokens equal the
    NumPy reference, whose ALiBi distances are |i − j| by index, holes or not (positions 0 … seq−1), with the full
    and with the tightest token capacity."""
    _, sd = checkpoint
    batch = {**batch_of(3, 12), "attention_mask": HOLED.copy()}
    states, logits = np_model(sd, batch, CONFIG)
    real = real_positions(HOLED)
    try:
        set_token_capacity(mlm, capacity)
        ours = run(mlm, batch)
    finally:
        set_token_capacity(mlm, None)
    for i, (a, b) in enumerate(zip(ours.hidden_states, states)):
        np.testing.assert_allclose(np.asarray(a)[real], b[real], atol=1e-5, rtol=0, err_msg=f"hidden state {i}")
    np.testing.assert_allclose(np.asarray(ours.logits)[real], logits[real], atol=1e-5, rtol=0, err_msg="logits")
    assert not np.asarray(ours.logits)[~real].any(), "hidden and padding positions are zeros"


@pytest.mark.parametrize("capacity", [None, 15], ids=["capacity-batch*seq", "capacity-real-tokens"])
def test_packed_documents_equal_documents_alone(mlm, capacity):
    """Three documents in one row with `segment_ids` 1, 2, 3 (and padding; the mask is 0/1) == each document run
    alone: attention never crosses documents and ALiBi distances restart at each."""
    rng = np.random.default_rng(7)
    docs = [{"input_ids": rng.integers(0, CONFIG["vocab_size"], (1, 5)),
             "token_type_ids": rng.integers(0, CONFIG["type_vocab_size"], (1, 5)),
             "attention_mask": np.ones((1, 5), np.int64)} for _ in range(3)]
    packed = {k: np.concatenate([d[k] for d in docs] + [np.zeros((1, 2), np.int64)], axis=1) for k in docs[0]}
    packed["segment_ids"] = np.concatenate([np.repeat([1, 2, 3], 5), [0, 0]])[None]
    assert set(packed["attention_mask"][0].tolist()) == {0, 1}
    try:
        set_token_capacity(mlm, capacity)
        out = run(mlm, packed)
    finally:
        set_token_capacity(mlm, None)
    alone = [run(mlm, d) for d in docs]
    for field in ("last_hidden_state", "logits"):
        expected = np.concatenate([np.asarray(getattr(a, field))[0] for a in alone])
        np.testing.assert_allclose(np.asarray(getattr(out, field))[0, :15], expected, atol=1e-5, rtol=0, err_msg=field)
    # the same positions given explicitly: the same outputs
    explicit = run(mlm, {**packed, "position_ids": np.concatenate([np.tile(np.arange(5), 3), [0, 0]])[None]})
    np.testing.assert_array_equal(np.asarray(explicit.logits), np.asarray(out.logits))


def test_position_ids_set_the_alibi_distances(checkpoint, mlm):
    """`position_ids` that close up a hole ([0, 1, ·, 2, 3]) make the holed row compute what the row without the
    hidden token computes (NumPy reference); the default (index) positions do not."""
    _, sd = checkpoint
    rng = np.random.default_rng(8)
    ids, types = rng.integers(0, CONFIG["vocab_size"], (1, 5)), rng.integers(0, CONFIG["type_vocab_size"], (1, 5))
    keep = np.array([0, 1, 3, 4])
    _, logits = np_model(sd, {"input_ids": ids[:, keep], "token_type_ids": types[:, keep],
                              "attention_mask": np.ones((1, 4), np.int64)}, CONFIG)
    holed = {"input_ids": ids, "token_type_ids": types, "attention_mask": np.array([[1, 1, 0, 1, 1]])}
    closed = run(mlm, {**holed, "position_ids": np.array([[0, 1, 2, 2, 3]])})
    np.testing.assert_allclose(np.asarray(closed.logits)[0, keep], logits[0], atol=1e-5, rtol=0)
    assert np.abs(np.asarray(run(mlm, holed).logits)[0, keep] - logits[0]).max() > 1e-4


def test_batch_fields_and_packing_input_checks(mlm):
    """MosaicBERT declares segment_ids and position_ids (so `model_inputs` passes them); BERT does not, and
    refuses them when called. Their shape must be input_ids'."""
    from minibert.config import BertConfig
    from minibert.models.bert import BertForMaskedLM, BertModel

    for model_class in (MosaicBertModel, MosaicBertForMaskedLM):
        assert {"segment_ids", "position_ids"} <= set(model_class.batch_fields()), model_class
    for model_class in (BertModel, BertForMaskedLM):
        assert not {"segment_ids", "position_ids"} & set(model_class.batch_fields()), model_class
    ids = np.ones((2, 6), np.int64)
    for name in ("segment_ids", "position_ids"):
        with pytest.raises(ValueError, match=f"{name} has shape \\(2, 5\\) but input_ids has shape \\(2, 6\\)"):
            mlm(ids, np.ones_like(ids), **{name: np.ones((2, 5), np.int64)})
    with pytest.raises(ValueError, match="segment_ids must be non-negative"):
        mlm(ids, np.ones_like(ids), segment_ids=-np.ones_like(ids))
    bert = BertModel(BertConfig(vocab_size=10, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                                intermediate_size=16))
    with pytest.raises(ValueError, match="BertModel does not take segment_ids"):
        bert(ids, np.ones_like(ids), segment_ids=np.ones_like(ids))


def test_token_capacity_below_batch_times_seq(mlm, batch3x12):
    """With the capacity set to the real-token count (< batch·seq) the outputs are the same; too few is an error."""
    batch, full = batch3x12
    real = int(batch["attention_mask"].sum())
    assert real < 3 * 12
    try:
        set_token_capacity(mlm, real)
        assert mlm.bert.token_capacity == real
        np.testing.assert_allclose(np.asarray(run(mlm, batch, LABELS).logits), np.asarray(full.logits), atol=1e-6, rtol=0)
        set_token_capacity(mlm, real - 1)
        with pytest.raises(ValueError, match=f"{real} real tokens but the token capacity is {real - 1}"):
            run(mlm, batch)
    finally:
        set_token_capacity(mlm, None)


# ---------------------------------------------------------------- checkpoints

def test_loads_reference_key_names_and_ignores_tied_copy(checkpoint, mlm):
    _, sd = checkpoint
    ours = {k: np.asarray(v[...]) for k, v in model_state_dict(mlm).items()}
    assert set(ours) == set(sd)                                   # exactly the reference names, no decoder.weight
    for k in sd:
        np.testing.assert_array_equal(ours[k], sd[k].astype(np.float32))
    assert mlm.config.extra["alibi_starting_size"] == BUILT_FOR   # the reference's other keys are kept


def test_save_pretrained_round_trip_is_byte_identical(mlm, tmp_path):
    minibert.save_pretrained(mlm, tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["model_type"] == "mosaic_bert" and config["architectures"] == ["MosaicBertForMaskedLM"]
    assert config["alibi_starting_size"] == BUILT_FOR and config["mlm_probability"] == 0.3
    saved = load_file(tmp_path / "model.safetensors")
    assert "cls.predictions.decoder.bias" in saved and "cls.predictions.decoder.weight" not in saved
    again = minibert.from_pretrained(tmp_path)
    assert type(again) is MosaicBertForMaskedLM
    before, after = model_state_dict(mlm), model_state_dict(again)
    assert set(before) == set(after) == set(saved)
    for k in before:
        assert np.asarray(before[k][...]).tobytes() == np.asarray(after[k][...]).tobytes() == saved[k].tobytes(), k


# ---------------------------------------------------------------- precision, config

@pytest.mark.parametrize("low_precision_layernorm", [False, True], ids=["fp32-layernorm", "bf16-layernorm"])
def test_bfloat16_compute_is_close_to_float32(checkpoint, batch3x12, low_precision_layernorm):
    model = minibert.from_pretrained(checkpoint[0], dtype=jnp.bfloat16)
    set_low_precision_layernorm(model, low_precision_layernorm)
    assert all(v[...].dtype == jnp.float32 for v in model_state_dict(model).values())
    batch, reference = batch3x12
    out = run(model, batch)
    assert out.logits.dtype == jnp.bfloat16
    real = real_positions(batch["attention_mask"])
    ours, reference = np.asarray(out.logits, np.float32)[real], np.asarray(reference.logits)[real]
    error = np.abs(ours - reference).max() / np.abs(reference).max()
    assert error <= 0.05, error


def test_config_defaults_and_errors():
    config = MosaicBertConfig()
    assert config.mlm_probability == 0.3 and config.attention_probs_dropout_prob == 0.0
    assert not hasattr(config, "max_position_embeddings")   # no position embeddings: any length runs
    with pytest.raises(ValueError, match="not a multiple"):
        MosaicBertConfig(hidden_size=30, num_attention_heads=4).validate()   # checked when a model is built
    with pytest.raises(ValueError, match="mlm_probability"):
        MosaicBertConfig(mlm_probability=1.5).validate()


def test_published_checkpoint_dialect_and_composer_prefix(checkpoint, mlm, tmp_path):
    """Hub MosaicBERT configs say model_type "bert" / BertForMaskedLM (with `alibi_starting_size`), and Composer
    state dicts prefix every key with `model.`: both load as MosaicBERT."""
    path, _ = checkpoint
    config = {**json.loads((path / "config.json").read_text()), "model_type": "bert", "architectures": ["BertForMaskedLM"]}
    (tmp_path / "config.json").write_text(json.dumps(config))
    save_file({"model." + k: v for k, v in load_file(path / "model.safetensors").items()},
              str(tmp_path / "model.safetensors"), metadata={"format": "pt"})
    loaded = minibert.from_pretrained(tmp_path)
    assert type(loaded) is MosaicBertForMaskedLM
    for k, v in model_state_dict(mlm).items():
        np.testing.assert_array_equal(np.asarray(model_state_dict(loaded)[k][...]), np.asarray(v[...]))
