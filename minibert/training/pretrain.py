"""`minibert pretrain`: a prepared corpus → examples per step → Trainer → a Hugging Face model directory.

    minibert prepare --corpus ... --output data/wiki     # once: token ids in shards (training/prepare.py)
    minibert pretrain --data data/wiki ...               # many times: examples made per step from the shards
    minibert pretrain --corpus FILES ...                 # the small path: prepares into OUTPUT/data first

Every argument is checked before anything is read or compiled. The output directory holds, at the end,
`config.json` + `model.safetensors` + the tokenizer files (loadable by minibert and by `transformers`),
`metrics.jsonl`, and `checkpoints/` (orbax) from which `--resume` continues.

Speed (issue 7), on by default: the MLM head runs on the masked positions only (a sparse head,
`Batches(max_predictions=...)`, for every family whose model accepts `masked_positions`); attention is the fused
`jax.nn.dot_product_attention` on a GPU or TPU (`attention="auto"`; the reference einsum on a CPU); and a model
trained from scratch gets a vocabulary rounded up to a multiple of 64 (`padded_vocab_size`): the extra rows are
never produced by the tokenizer, they only align the embedding and decoder matmuls to the hardware's tiles.
`config.json` says the padded `vocab_size`, which `transformers` loads as it is.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from pathlib import Path

import jax
import jax.numpy as jnp
from flax import nnx

from minibert import presets
from minibert.models import auto
from minibert.models.deberta_v2 import DebertaV3Pretrainer
from minibert.models.electra import ElectraPretrainer
from minibert.models.flex import FlexPretrainer
from minibert.nn.attention import IMPLEMENTATIONS, set_attention_implementation
from minibert.options import AT_LEAST_0, AT_LEAST_1, OPEN_UNIT, Range, bounded, check
from minibert.tokenization import AutoTokenizer, Tokenizer
from minibert.tokenization.base import SPECIAL_TOKEN_ROLES
from minibert.training import sharding
from minibert.training.data import Batches, PackedRows, SentencePairs, default_max_predictions
from minibert.training.loop import TrainConfig, Trainer
from minibert.training.prepare import (TOKENIZER_DIR, TOKENIZERS, VOCAB_SIZE, PrepareConfig, load_tokenizer, prepare,
                                       summary)
from minibert.training.shards import PreparedCorpus

RTD_PRETRAINERS = {   # the discriminator class an "rtd" objective names → the pair that trains it
    "ElectraForPreTraining": ElectraPretrainer, "DebertaV2ForReplacedTokenDetection": DebertaV3Pretrainer,
    "FlexForReplacedTokenDetection": FlexPretrainer}
EVAL_EXAMPLES = 512                       # held-out examples scored at each evaluation, at most (in batches)
EVAL_MASK_RATE = 0.15                     # held-out rows are masked as BERT masks (Devlin et al. 2019 §3.1), whatever
                                          # the training rate, so that runs masking 15% and 30% compare


@dataclasses.dataclass
class PretrainConfig:
    family: str = "modernbert"            # the default: a tiny ModernBERT learns the most in a CPU's few minutes
    size: str = "tiny"
    objective: str | None = None          # the family's default when None
    config_file: str | None = None        # a JSON file of model config fields over the size's (update_from_file)
    config_overrides: str | None = None   # "name=value,..." over those (update_from_string)
    data: str | None = None               # a prepared corpus (minibert prepare); else `corpus` is prepared first
    corpus: list[str] | None = None       # None: the embedded default (Python's docstrings)
    text_field: str = "text"              # the text's field when `corpus` is JSON Lines, Parquet or a dataset
    vocab: str | None = None              # vocab.txt or tokenizer directory; None: the prepared one, or train one
    tokenizer: str | None = None          # a trained vocabulary's algorithm (recipes.TOKENIZERS); None: the family's
    vocab_size: int = bounded(4000, VOCAB_SIZE)
    lowercase: bool = True
    seq_len: int = bounded(64, Range(8))
    batch_size: int = bounded(32, AT_LEAST_1)
    mask_rate: float | None = bounded(None, OPEN_UNIT)   # the family's default when None (15%; MosaicBERT 30%)
    whole_word: bool = False
    held_out_documents: float = bounded(0.02, Range(0, 1, open_high=True, kind=float))  # the last documents, for eval
    workers: int = bounded(0, AT_LEAST_0)   # processes that prepare `corpus` (0: every core)
    dtype: str = "float32"                # compute dtype: bfloat16 on accelerators
    attention: str = "auto"               # "reference", "fused", or "auto": fused on GPU/TPU, reference on CPU
    resume: bool = False
    # the `minibert pretrain` defaults (the command reads them from here): a tiny model's few minutes on a CPU
    train: TrainConfig = dataclasses.field(default_factory=lambda: TrainConfig(
        steps=1000, learning_rate=2e-3, warmup_steps=100, eval_every=250, save_every=250,
        output_dir="runs/minibert-tiny"))


@dataclasses.dataclass
class Plan:
    """What the checked arguments decide: the family, objective, model class and config, masking, attention."""
    family: presets.Family
    objective: str
    model_class: type
    model_config: object
    mask_rate: float
    max_predictions: int | None           # a sparse MLM head's predictions per row; None: a dense head
    attention: str


def plan(config: PretrainConfig) -> Plan:
    """Check every argument (a clear error before anything is read or compiled) and resolve the presets.
    Raises ValueError naming the field outside its range (`minibert.options`) or the preset, objective or
    length that does not fit; FileExistsError for an output that holds checkpoints without `resume`."""
    check(config)                          # the ranges of every numeric field (and of a DistillConfig's own)
    check(config.train)
    family, size = presets.preset(config.family, config.size)
    objective = config.objective or next(iter(family.objectives))
    if objective not in family.objectives:
        raise ValueError(f"{config.family} does not train with objective {objective!r}; "
                         f"choose from {', '.join(family.objectives)}")
    mask_rate = family.mask_rate if config.mask_rate is None else config.mask_rate
    model_class = auto.model_class_by_name(family.objectives[objective])
    model_config = model_class.config_class(**size)
    if config.config_file:
        model_config.update_from_file(config.config_file)
    if config.config_overrides:
        model_config.update_from_string(config.config_overrides)
    if config.config_file or config.config_overrides:
        model_config.validate()
    check_length(config.seq_len, model_config)
    if config.data and config.corpus:
        raise ValueError("give either --data (a prepared corpus) or --corpus (prepared into the output first), not both")
    if config.tokenizer is not None and config.tokenizer not in TOKENIZERS:
        raise ValueError(f"--tokenizer must be one of {', '.join(TOKENIZERS)}, not {config.tokenizer!r}")
    if config.tokenizer and (config.vocab or config.data):
        raise ValueError("--tokenizer chooses how a new vocabulary is trained: not with --vocab or --data, which "
                         "bring their own tokenizer")
    if not config.data and jax.process_count() > 1:
        raise ValueError("a run of several processes reads a prepared corpus: run `minibert prepare` once, then "
                         "pass --data to every process")
    if config.data and not (Path(config.data) / "manifest.json").is_file():
        PreparedCorpus(config.data)                                 # the error that says what is missing
    sharding.check_batch_size(config.batch_size, sharding.data_mesh())
    if config.dtype not in ("float32", "bfloat16"):
        raise ValueError(f"dtype must be float32 or bfloat16, not {config.dtype!r}")
    attention = attention_implementation(config.attention)
    # a sparse MLM head (the head on the masked positions only) wherever the model accepts one
    max_predictions = (default_max_predictions(config.seq_len, mask_rate)
                       if model_class.accepts_masked_positions() else None)
    out = Path(config.train.output_dir)
    if (out / "checkpoints").exists() and any((out / "checkpoints").iterdir()) and not config.resume:
        raise FileExistsError(f"{out} already holds checkpoints: pass --resume to continue, or choose another --output")
    return Plan(family, objective, model_class, model_config, mask_rate, max_predictions, attention)


def build(config: PretrainConfig):
    """Check the arguments, prepare or open the corpus, read its tokenizer, build the batches and the model."""
    p = plan(config)
    if config.train.steps < 1:            # (distillation may have none: only layer-wise transfer)
        raise ValueError(f"pretraining needs steps ≥ 1, got {config.train.steps}")
    corpus, tokenizer = prepared_corpus(config)
    p.model_config.vocab_size = padded_vocab_size(len(tokenizer))
    set_special_token_ids(p.model_config, tokenizer)
    check_length(config.seq_len, p.model_config)                   # (RoBERTa's longest input follows the pad id)
    batches, eval_batch = corpus_batches(config, p, tokenizer, corpus)
    rngs, dtype = nnx.Rngs(config.train.seed), jnp.dtype(config.dtype)
    if p.objective == "rtd":  # generator + discriminator sharing their embeddings (ELECTRA), or their GDES (DeBERTa)
        pretrainer = RTD_PRETRAINERS[p.model_class.__name__]
        model = pretrainer.from_config(p.model_config, p.family.generator_fraction, dtype=dtype, rngs=rngs)
    else:
        model = p.model_class(p.model_config, dtype=dtype, rngs=rngs)
    set_attention_implementation(model, p.attention)
    announce_attention(p, config.dtype)
    return model, tokenizer, batches, eval_batch


ATTENTION_KERNELS = {"reference": "reference (einsum)", "fused": "fused (jax.nn.dot_product_attention)"}


def announce_attention(p: Plan, dtype: str) -> None:
    """Print one line: the attention implementation and compute dtype of this run, and the backend. Warn once (one
    call per run) when the model's attention dropout sends fused training steps to the reference path: the fused
    kernel has no dropout on the attention probabilities."""
    field = next((f for f in ("attention_probs_dropout_prob", "attention_dropout") if hasattr(p.model_config, f)), None)
    dropout = getattr(p.model_config, field) if field else 0
    attention = ATTENTION_KERNELS[p.attention]
    if p.attention == "fused" and dropout:
        attention = f"{attention} in evaluation, {ATTENTION_KERNELS['reference']} in training (attention dropout)"
        warnings.warn(f"the model's attention dropout ({field}={dropout}) has no fused kernel, so training steps "
                      f"use the reference attention (evaluation the fused one); pretrain with {field}=0, as "
                      f"MosaicBERT and ModernBERT do, to train on the fused path")
    if jax.process_index() == 0:
        parameters = " (parameters float32)" if dtype != "float32" else ""
        print(f"attention: {attention}, dtype {dtype}{parameters}, on {jax.default_backend()}")


def check_length(seq_len: int, model_config) -> None:
    """ValueError when rows of `seq_len` tokens do not fit the model's positions: `max_position_embeddings`, less
    the positions up to the padding index for the families whose positions start after it (`longest_input`:
    RoBERTa's 514 positions take 512 tokens)."""
    positions = getattr(model_config, "max_position_embeddings", None)
    longest = model_config.longest_input
    if positions is None or seq_len <= longest:
        return
    if longest == positions:
        raise ValueError(f"--seq-len {seq_len} exceeds the model's max_position_embeddings {positions}")
    raise ValueError(f"--seq-len {seq_len} exceeds the model's longest input, {longest} tokens: its positions start "
                     f"at pad_token_id + 1 = {model_config.pad_token_id + 1} of max_position_embeddings {positions}")


# Special-token ids that transformers' config of a family holds but minibert's does not declare, kept in `extra`
# (written to config.json): left out, transformers would fill in its defaults, the released vocabulary's ids.
UNDECLARED_TOKEN_IDS = {"modernbert": ("bos_token_id", "eos_token_id", "cls_token_id", "sep_token_id")}


def set_special_token_ids(model_config, tokenizer: Tokenizer) -> None:
    """Give the model config the tokenizer's special-token ids: every `<role>_id` field it has (pad_token_id for
    all; RoBERTa's bos/eos_token_id) and those of UNDECLARED_TOKEN_IDS. bos and eos fall back to the tokenizer's
    cls and sep: BERT's [CLS] and [SEP] stand where RoBERTa's <s> and </s> do."""
    ids = {f"{role}_id": getattr(tokenizer, f"{role}_id") for role in SPECIAL_TOKEN_ROLES}
    for role, stand_in in (("bos_token_id", "cls_token_id"), ("eos_token_id", "sep_token_id")):
        ids[role] = ids[stand_in] if ids[role] is None else ids[role]
    declared = {f.name for f in dataclasses.fields(model_config)}
    for name, value in ids.items():
        if name in declared:
            setattr(model_config, name, value)
        elif name in UNDECLARED_TOKEN_IDS.get(model_config.model_type, ()):
            model_config.extra[name] = value


def prepared_corpus(config: PretrainConfig) -> tuple[PreparedCorpus, Tokenizer]:
    """`--data`, or `--corpus` (or the embedded default) prepared into OUTPUT/data — a finished preparation is
    reused, a killed one continued — and the run's tokenizer: `--vocab`, which must be the corpus's, or the
    corpus's own, trained with `--tokenizer` (default: the family's algorithm, `presets.Family.tokenizer`). The
    tokenizer files are saved in the output directory."""
    out = Path(config.train.output_dir)
    if config.data is None:
        kind = None if config.vocab else config.tokenizer or presets.FAMILIES[config.family].tokenizer
        manifest = prepare(PrepareConfig(corpus=config.corpus, output=str(out / "data"), vocab=config.vocab,
                                         tokenizer=kind, vocab_size=config.vocab_size, lowercase=config.lowercase,
                                         workers=config.workers, text_field=config.text_field,
                                         seed=config.train.seed))
        print(f"prepared {out / 'data'}: {summary(manifest)}")
    corpus = PreparedCorpus(config.data or out / "data")
    if config.vocab:
        tokenizer = load_tokenizer(config.vocab, config.lowercase)
        corpus.check_tokenizer(tokenizer)
    else:
        tokenizer = AutoTokenizer.from_pretrained(corpus.directory / TOKENIZER_DIR)
    if jax.process_index() == 0:
        tokenizer.save_pretrained(out)
    return corpus, tokenizer


def corpus_batches(config: PretrainConfig, p: Plan, tokenizer, corpus: PreparedCorpus) -> tuple[Batches, dict | None]:
    """The corpus as masked training batches (NSP pairs or packed sequences) and one held-out batch: at most
    EVAL_EXAMPLES examples of the last `held_out_documents` of the documents, masked at EVAL_MASK_RATE (None when
    there are too few)."""
    n = corpus.documents
    held_out = max(1, int(n * config.held_out_documents)) if n > 1 else 0
    train_docs, eval_docs = range(0, n - held_out), range(n - held_out, n)
    if p.objective == "mlm+nsp" and len(train_docs) < 2:
        raise ValueError(f"{corpus.directory} holds {n} document(s), {held_out} held out for evaluation: NSP needs at "
                         f"least two to train on (or train with --objective mlm)")

    def make(docs):
        if p.objective in ("mlm+nsp", "mlm+sop"):
            return SentencePairs(corpus, docs, config.seq_len, tokenizer, sentence_order=p.objective == "mlm+sop")
        return PackedRows(corpus, docs, config.seq_len, tokenizer)

    options = dict(mask_rate=p.mask_rate, whole_word=config.whole_word, max_predictions=p.max_predictions)
    batches = Batches(make(train_docs), config.batch_size, tokenizer, seed=config.train.seed, **options)
    eval_batch = None
    if len(eval_docs) >= (2 if p.objective == "mlm+nsp" else 1):
        held = make(eval_docs)
        rows = min(len(held), EVAL_EXAMPLES)
        rows -= rows % sharding.data_mesh().size
        if rows:
            slots = p.max_predictions and max(p.max_predictions,
                                              default_max_predictions(config.seq_len, EVAL_MASK_RATE))
            eval_batch = Batches(held, rows, tokenizer, seed=config.train.seed + 1, shuffle=False,
                                 mask_rate=EVAL_MASK_RATE, whole_word=config.whole_word, max_predictions=slots)(0)
    return batches, eval_batch


VOCAB_MULTIPLE = 64


def padded_vocab_size(tokens: int) -> int:
    """The vocabulary rounded up to a multiple of 64, so the embedding and decoder matmuls fill whole tiles."""
    return VOCAB_MULTIPLE * math.ceil(tokens / VOCAB_MULTIPLE)


def attention_implementation(choice: str) -> str:
    """`auto` → "fused" (`jax.nn.dot_product_attention`, cuDNN on a GPU) on a GPU or TPU, "reference" on a CPU."""
    if choice == "auto":
        return "fused" if jax.default_backend() in ("gpu", "tpu") else "reference"
    if choice not in IMPLEMENTATIONS:
        raise ValueError(f"unknown attention implementation {choice!r}; choose from auto, {', '.join(IMPLEMENTATIONS)}")
    return choice


def pretrain(config: PretrainConfig):
    """Run the whole job; returns (the masked LM, tokenizer, metrics history)."""
    model, tokenizer, batches, eval_batch = build(config)
    trainer = Trainer(model, config.train, batches, eval_batch)
    history = trainer.run(resume=config.resume)
    model = trainer.trained_model()
    if jax.process_index() == 0:
        model.save_pretrained(config.train.output_dir)
        tokenizer.save_pretrained(config.train.output_dir)
        if isinstance(model, ElectraPretrainer):  # the generator is the masked LM; it gets the tokenizer files too
            tokenizer.save_pretrained(Path(config.train.output_dir) / "generator")
    if isinstance(model, ElectraPretrainer):
        model = model.generator
    return model, tokenizer, history
