"""A model name or a directory → a local directory: `from_pretrained("bert-base-uncased")` as in transformers.

A directory is used as it is. Anything else is a Hugging Face Hub repository id, resolved by `huggingface_hub`:
its local cache first (`HF_HUB_CACHE` / `cache_dir`, laid out as models--org--name/{blobs, refs, snapshots}),
offline included (`HF_HUB_OFFLINE=1` or `local_files_only=True`), else downloaded. Only what minibert reads is
fetched: the JSON files, the vocabulary and safetensors weights (PyTorch's .bin only when a repository has no
safetensors), never the TF / Flax / ONNX copies a repository may also hold.
"""

from __future__ import annotations

from pathlib import Path

OPTIONS = ("cache_dir", "local_files_only", "revision")      # the keyword arguments of `resolve`
PATTERNS = ["*.json", "*.txt", "*.model", "*.safetensors"]
TORCH_PATTERNS = ["*.json", "*.txt", "*.model", "*.bin"]


def resolve(name_or_path, *, cache_dir=None, local_files_only: bool = False, revision: str | None = None) -> Path:
    """The local directory of `name_or_path`: itself when it is a directory, else the snapshot of the Hub repository
    it names (from the cache, or downloaded). Raises FileNotFoundError naming it when it is neither a directory nor
    available (offline and not in the cache, or not a repository)."""
    path = Path(name_or_path)
    if path.is_dir():
        return path
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HFValidationError

    options = dict(cache_dir=cache_dir, local_files_only=local_files_only, revision=revision)
    try:
        snapshot = Path(snapshot_download(str(name_or_path), allow_patterns=PATTERNS, **options))
        if not any(snapshot.glob("*.safetensors")) and not local_files_only:
            snapshot = Path(snapshot_download(str(name_or_path), allow_patterns=TORCH_PATTERNS, **options))
    except (HFValidationError, OSError, ValueError) as e:  # the hub's not-found / offline errors are OSErrors
        raise FileNotFoundError(f"{name_or_path!r} is not a directory, and not a Hugging Face Hub model available "
                                f"here ({type(e).__name__}: {e})") from e
    return snapshot
