"""Sentence embeddings from a sentence-transformers directory, with sentence-transformers' results.

    vectors = encode("path/to/all-MiniLM-L6-v2", ["a sentence", "another"])     # (2, 384) float32, unit length
    encoder = SentenceEncoder.from_pretrained(path)                            # load once, encode often
    vectors = encoder.encode(texts, batch_size=32, normalize_embeddings=False)

The directory is what `SentenceTransformer.save` writes (Reimers & Gurevych 2019, "Sentence-BERT"):
`modules.json` lists the modules in order — a Transformer (the Hugging Face model and tokenizer, at the module's
`path`, "" for the directory itself), a Pooling (`1_Pooling/config.json`) and optionally a Normalize. Read as
sentence-transformers reads them:

    Transformer   texts (lowercased if sentence_bert_config.json says `do_lower_case`) tokenized, truncated to
                  `max_seq_length` (sentence_bert_config.json; else the tokenizer's model_max_length), capped at
                  max_position_embeddings; the encoder's last_hidden_state h (batch, seq, hidden)
    Pooling       per text, over its real tokens (mask m): "cls" h[0]; "mean" Σ m·h / max(Σ m, 1e-9); "max"
                  max over real tokens (padding at -1e9); "mean_sqrt_len" Σ m·h / √Σ m — several modes are
                  concatenated in that order (cls, max, mean, mean_sqrt_len). Config: the booleans
                  `pooling_mode_cls_token`, `pooling_mode_mean_tokens`, … (sentence-transformers < 6) or
                  `pooling_mode` ("mean", "cls", "max", or a list; sentence-transformers 6)
    Normalize     x / max(‖x‖₂, 1e-12)

Other modules (Dense, …) and other pooling modes raise ValueError naming them. A plain Hugging Face directory
(no `modules.json`) is read as sentence-transformers reads one: the model, then mean pooling.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from minibert.checkpoints import hf, hub
from minibert.inference import encoder_inputs
from minibert.tokenization import AutoTokenizer, Tokenizer

POOLING_MODES = ("cls", "max", "mean", "mean_sqrt_len")     # sentence-transformers' order when several are set
MODULES = ("Transformer", "Pooling", "Normalize")


def _read_json(path: Path) -> dict:
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist (a sentence-transformers directory has it)")
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def pooling_modes(config: dict) -> tuple[str, ...]:
    """The pooling modes of a `1_Pooling/config.json`, in sentence-transformers' order. Raises ValueError for a
    mode minibert does not compute."""
    if "pooling_mode" in config and isinstance(config["pooling_mode"], (str, list)):
        asked = [config["pooling_mode"]] if isinstance(config["pooling_mode"], str) else list(config["pooling_mode"])
        asked = ["mean_sqrt_len" if m == "mean_sqrt_len_tokens" else m for m in asked]
    else:
        keys = {"cls": "pooling_mode_cls_token", "max": "pooling_mode_max_tokens",
                "mean": "pooling_mode_mean_tokens", "mean_sqrt_len": "pooling_mode_mean_sqrt_len_tokens",
                "weightedmean": "pooling_mode_weightedmean_tokens", "lasttoken": "pooling_mode_lasttoken"}
        asked = [mode for mode, key in keys.items() if config.get(key)]
    unknown = [m for m in asked if m not in POOLING_MODES]
    if unknown or not asked:
        raise ValueError(f"pooling config {config}: minibert pools with {', '.join(POOLING_MODES)}, "
                         f"not {', '.join(unknown) or 'nothing'}")
    return tuple(m for m in POOLING_MODES if m in asked)


def pool(hidden: np.ndarray, mask: np.ndarray, modes: tuple[str, ...]) -> np.ndarray:
    """(batch, seq, hidden) token vectors and their (batch, seq) 0/1 mask → (batch, len(modes) · hidden)."""
    hidden, m = hidden.astype(np.float32), mask[..., None].astype(np.float32)
    parts = []
    for mode in modes:
        if mode == "cls":
            parts.append(hidden[:, 0])
        elif mode == "max":
            parts.append(np.where(m > 0, hidden, np.float32(-1e9)).max(axis=1))
        else:
            total, count = (hidden * m).sum(axis=1), m.sum(axis=1)
            parts.append(total / (np.maximum(count, 1e-9) if mode == "mean" else np.sqrt(count)))
    return np.concatenate(parts, axis=-1)


def normalize(x: np.ndarray) -> np.ndarray:
    """Each row divided by its L2 norm (at least 1e-12), as torch.nn.functional.normalize."""
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def load_tokenizer(directory: Path) -> Tokenizer:
    """The directory's tokenizer (vocab.txt, or tokenizer.json: sentence-transformers 6 saves no vocab.txt), as
    `AutoTokenizer` reads it."""
    return AutoTokenizer.from_pretrained(directory)


class SentenceEncoder:
    """A model, its tokenizer, and sentence-transformers' pooling and normalization (see the module docstring)."""

    def __init__(self, model, tokenizer, *, pooling: tuple[str, ...] = ("mean",), normalize: bool = False,
                 max_seq_length: int | None = None, do_lower_case: bool = False):
        self.model, self.tokenizer = model, tokenizer
        self.pooling, self.normalize = pooling, normalize
        self.max_seq_length, self.do_lower_case = max_seq_length, do_lower_case

    @classmethod
    def from_pretrained(cls, name_or_path, **hub_options) -> SentenceEncoder:
        """Read a sentence-transformers directory (or a Hub name's snapshot: `hub_options` as for
        `checkpoints.hub.resolve`); a plain Hugging Face directory (no modules.json) gets mean pooling, as
        sentence-transformers gives it. Raises FileNotFoundError for a missing file, ValueError for a module or
        pooling mode minibert does not have."""
        root = hub.resolve(name_or_path, **hub_options)
        modules = _read_json(root / "modules.json") if (root / "modules.json").is_file() else \
            [{"type": "Transformer", "path": ""}]
        kinds = [m["type"].rsplit(".", 1)[-1] for m in modules]
        if kinds not in [list(MODULES[:n]) for n in (1, 2, 3)]:
            raise ValueError(f"{root / 'modules.json'}: minibert reads a Transformer, a Pooling and optionally a "
                             f"Normalize module, in that order; it lists {', '.join(m['type'] for m in modules)}")
        transformer = root / modules[0]["path"]
        model = hf.from_pretrained(transformer)
        tokenizer = load_tokenizer(transformer)
        settings = {}
        if (transformer / "sentence_bert_config.json").is_file():
            settings = _read_json(transformer / "sentence_bert_config.json")
        limit = settings.get("max_seq_length") or tokenizer.model_max_length
        positions = model.config.longest_input
        pooling = pooling_modes(_read_json(root / modules[1]["path"] / "config.json")) if len(kinds) > 1 else ("mean",)
        return cls(model, tokenizer, pooling=pooling, normalize="Normalize" in kinds,
                   do_lower_case=bool(settings.get("do_lower_case")),
                   max_seq_length=min(limit, positions) if positions else limit)

    def encode(self, sentences: str | list[str], *, batch_size: int = 32,
               normalize_embeddings: bool = False) -> np.ndarray:
        """sentence-transformers' `SentenceTransformer.encode`: (n, dim) float32 for a list, (dim,) for one
        sentence; unit length when the directory has a Normalize module or `normalize_embeddings`."""
        single = isinstance(sentences, str)
        texts = [sentences] if single else list(sentences)
        if self.do_lower_case:
            texts = [t.lower() for t in texts]
        order = np.argsort([-len(t) for t in texts], kind="stable")     # similar lengths batched together
        vectors = [None] * len(texts)
        for start in range(0, len(texts), batch_size):
            rows = order[start:start + batch_size]
            batch = self.tokenizer([texts[i] for i in rows], padding=True, truncation=self.max_seq_length is not None,
                                   max_length=self.max_seq_length, return_tensors="np")
            inputs = encoder_inputs(self.model, batch)
            hidden = np.asarray(self.model(**inputs).last_hidden_state, np.float32)
            for i, vector in zip(rows, pool(hidden, inputs["attention_mask"], self.pooling)):
                vectors[i] = vector
        out = np.stack(vectors) if vectors else np.zeros((0, 0), np.float32)
        if self.normalize or normalize_embeddings:
            out = normalize(out)
        return out[0] if single else out


def encode(name_or_path, sentences: str | list[str], **options) -> np.ndarray:
    """One call: load the sentence-transformers directory `name_or_path` and encode `sentences` (`options`: those
    of `SentenceEncoder.encode`)."""
    return SentenceEncoder.from_pretrained(name_or_path).encode(sentences, **options)
