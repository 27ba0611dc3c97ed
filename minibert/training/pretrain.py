"""`minibert pretrain`: corpus → vocabulary → examples → Trainer → a Hugging Face model directory.

Every argument is checked before anything is compiled. The output directory holds, at the end,
`config.json` + `model.safetensors` + the tokenizer files (loadable by minibert and by `transformers`),
`metrics.jsonl`, and `checkpoints/` (orbax) from which `--resume` continues.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import jax.numpy as jnp
import numpy as np
from flax import nnx

import minibert  # noqa: F401  (registers every family)
from minibert import presets
from minibert.models import registry
from minibert.models.electra import ElectraPretrainer
from minibert.tokenization.tokenizer import WordPieceTokenizer
from minibert.training import corpus as corpora
from minibert.training import sharding
from minibert.training.data import Batches, nsp_pairs, pack_sequences, tokenize_documents
from minibert.training.loop import TrainConfig, Trainer


@dataclasses.dataclass
class PretrainConfig:
    family: str = "bert"
    size: str = "tiny"
    objective: str | None = None          # the family's default when None
    corpus: list[str] | None = None       # None: the embedded default (Python's docstrings)
    vocab: str | None = None              # vocab.txt or tokenizer directory; None: train one
    vocab_size: int = 4000
    lowercase: bool = True
    seq_len: int = 64
    batch_size: int = 32
    mask_rate: float | None = None        # the family's default when None (15%; MosaicBERT 30%)
    whole_word: bool = False
    held_out_documents: float = 0.02      # fraction of documents kept for evaluation
    dtype: str = "float32"                # compute dtype: bfloat16 on accelerators
    resume: bool = False
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)


def build(config: PretrainConfig):
    """Check the arguments, read the corpus, make or read the vocabulary, build examples and the model."""
    family, size = presets.preset(config.family, config.size)
    objective = config.objective or next(iter(family.objectives))
    if objective not in family.objectives:
        raise ValueError(f"{config.family} does not train with objective {objective!r}; "
                         f"choose from {', '.join(family.objectives)}")
    mask_rate = family.mask_rate if config.mask_rate is None else config.mask_rate
    model_class = registry.MODELS[family.objectives[objective]]
    model_config = model_class.config_class(**size)
    positions = getattr(model_config, "max_position_embeddings", None)
    if positions is not None and config.seq_len > positions:
        raise ValueError(f"--seq-len {config.seq_len} exceeds the model's max_position_embeddings {positions}")
    sharding.check_batch_size(config.batch_size, sharding.data_mesh())
    if config.dtype not in ("float32", "bfloat16"):
        raise ValueError(f"dtype must be float32 or bfloat16, not {config.dtype!r}")

    out = Path(config.train.output_dir)
    if (out / "checkpoints").exists() and any((out / "checkpoints").iterdir()) and not config.resume:
        raise FileExistsError(f"{out} already holds checkpoints: pass --resume to continue, or choose another --output")
    documents = corpora.read_documents(config.corpus) if config.corpus else corpora.python_docstrings()
    tokenizer = _tokenizer(config, documents, out)
    model_config.vocab_size, model_config.pad_token_id = len(tokenizer), tokenizer.pad_id

    tokenized = tokenize_documents(tokenizer, documents)
    held_out = max(1, int(len(tokenized) * config.held_out_documents)) if len(tokenized) > 1 else 0
    train_docs, eval_docs = tokenized[:len(tokenized) - held_out], tokenized[len(tokenized) - held_out:]
    make = lambda docs, seed: (nsp_pairs(docs, config.seq_len, tokenizer.cls_id, tokenizer.sep_id, tokenizer.pad_id,
                                         np.random.default_rng(seed)) if objective == "mlm+nsp" else
                               pack_sequences(docs, config.seq_len, tokenizer.cls_id, tokenizer.sep_id, tokenizer.pad_id))
    examples = make(train_docs, config.train.seed)
    if not len(examples["input_ids"]):
        raise ValueError("the corpus gives no training example")
    batches = Batches(examples, config.batch_size, tokenizer, seed=config.train.seed, mask_rate=mask_rate,
                      whole_word=config.whole_word)
    eval_batch = None
    if eval_docs and (objective != "mlm+nsp" or len(eval_docs) >= 2):
        held = make(eval_docs, config.train.seed + 1)
        n = len(held["input_ids"]) - len(held["input_ids"]) % sharding.data_mesh().size
        if n:
            eval_batches = Batches({k: v[:n] for k, v in held.items()}, n, tokenizer, seed=config.train.seed + 1,
                                   mask_rate=mask_rate, whole_word=config.whole_word)
            eval_batch = eval_batches(0)
    rngs, dtype = nnx.Rngs(config.train.seed), jnp.dtype(config.dtype)
    if objective == "rtd":  # ELECTRA: generator + discriminator sharing their embeddings
        model = ElectraPretrainer.from_config(model_config, family.generator_fraction, dtype=dtype, rngs=rngs)
    else:
        model = model_class(model_config, dtype=dtype, rngs=rngs)
    return model, tokenizer, batches, eval_batch


def _tokenizer(config: PretrainConfig, documents, out: Path) -> WordPieceTokenizer:
    """The run's vocabulary: given, already saved by the run being resumed, or trained on the corpus."""
    if config.vocab:
        path = Path(config.vocab)
        return WordPieceTokenizer.from_pretrained(path) if path.is_dir() else \
            WordPieceTokenizer.from_file(path, lowercase=config.lowercase)
    if config.resume and (out / "vocab.txt").is_file():
        return WordPieceTokenizer.from_pretrained(out)
    tokenizer = WordPieceTokenizer.train((s for d in documents for s in d), vocab_size=config.vocab_size,
                                         lowercase=config.lowercase)
    tokenizer.save_pretrained(out)
    return tokenizer


def pretrain(config: PretrainConfig):
    """Run the whole job; returns (the masked LM, tokenizer, metrics history)."""
    model, tokenizer, batches, eval_batch = build(config)
    trainer = Trainer(model, config.train, batches, eval_batch)
    history = trainer.run(resume=config.resume)
    model = trainer.trained_model()
    model.save_pretrained(config.train.output_dir)
    tokenizer.save_pretrained(config.train.output_dir)
    if isinstance(model, ElectraPretrainer):  # the generator is the masked LM; it gets the tokenizer files too
        tokenizer.save_pretrained(Path(config.train.output_dir) / "generator")
        model = model.generator
    return model, tokenizer, history
