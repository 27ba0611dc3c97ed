"""`minibert finetune`: task files → word pieces with labels → Trainer → dev evaluation → best checkpoint.

    task   reader              head                         dev metrics                  best checkpoint by
    glue   tasks/glue.py       *ForSequenceClassification   accuracy, F1                 accuracy
    ner    tasks/ner.py        *ForTokenClassification      entity precision/recall/F1   entity F1
    squad  tasks/squad.py      *ForQuestionAnswering        exact match, F1              F1

The model directory is a Hugging Face one (config.json, weights, tokenizer files): a pretrained encoder — its
pretraining heads are dropped, the task head (and a pooler the checkpoint lacks) starts from random weights,
as `transformers` does — or an already fine-tuned model of the same task, which is loaded whole. The run is
the pretraining loop (training/loop.py: jit step, data parallel, bf16, progress bar, metrics.jsonl, orbax
checkpoints for --resume) with the task's loss; at every evaluation the dev set is scored and, when the
selection metric improves, the model is written to the output directory as a Hugging Face directory
(config.json with `id2label`/`label2id`, model.safetensors, tokenizer files) — so it ends holding the best one.

Task distillation (soft labels; Hinton et al. 2015, as MobileBERT and ConvBERT fine-tune their small models):
with `teacher`, a fine-tuned model of the same task, labels and vocabulary, the teacher's outputs on every training
row are computed once (`teacher_predictions`), and the loss is α · the task loss + (1 − α) · T² KL(teacher ‖ student)
at temperature T (`distillation.soft_target_loss`) — per example (GLUE), per labelled word (NER), per start/end
distribution (SQuAD).
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import grain
import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from minibert.checkpoints import hf
from minibert.distillation import soft_target_loss
from minibert.inference import batched_forward, encoder_inputs
from minibert.losses import IGNORE_INDEX
from minibert.models import auto, finetuning
from minibert.options import AT_LEAST_1, POSITIVE, UNIT, Range, bounded, check
from minibert.tasks import glue, metrics, ner, squad
from minibert.tokenization import AutoTokenizer, Tokenizer
from minibert.training.batch import model_inputs as batch_inputs
from minibert.training.loop import TrainConfig, Trainer, loss_and_accuracy, masked_accuracy

TASKS = {"glue": "ForSequenceClassification", "ner": "ForTokenClassification", "squad": "ForQuestionAnswering"}


@dataclasses.dataclass
class FinetuneConfig:
    task: str = "glue"
    model: str = ""                       # Hugging Face model directory, with its tokenizer
    train_file: str = ""
    eval_file: str | None = None
    max_length: int | None = bounded(None, Range(8))     # None: 128 (glue, ner), 384 (squad)
    batch_size: int = bounded(32, AT_LEAST_1)
    eval_batch_size: int = bounded(64, AT_LEAST_1)
    epochs: float | None = bounded(3.0, POSITIVE)         # sets train.steps when given
    warmup_ratio: float | None = bounded(0.1, UNIT)       # sets train.warmup_steps when given
    train_limit: int | None = bounded(None, AT_LEAST_1)   # a seeded random subset of the training examples
    eval_limit: int | None = bounded(None, AT_LEAST_1)    # the first examples of the dev file
    doc_stride: int = bounded(128, AT_LEAST_1)            # squad: step between context windows, in tokens
    max_query_length: int = bounded(64, AT_LEAST_1)       # squad: question tokens kept
    max_answer_length: int = bounded(30, AT_LEAST_1)      # squad: tokens of a predicted answer, at most
    dtype: str = "float32"                # compute dtype: bfloat16 on accelerators
    resume: bool = False
    teacher: str | None = None            # a fine-tuned model of the task: distil its soft labels
    alpha: float = bounded(0.5, UNIT)     # with a teacher: weight of the task loss against the soft-label loss
    temperature: float = bounded(1.0, POSITIVE)           # with a teacher: softmax temperature of the soft labels
    # the `minibert finetune` defaults (its --steps and --warmup default to epochs and warmup_ratio instead)
    train: TrainConfig = dataclasses.field(default_factory=lambda: TrainConfig(
        learning_rate=5e-5, eval_every=200, save_every=1000, output_dir="runs/finetune"))


@dataclasses.dataclass
class FinetuneResult:
    model: nnx.Module                     # the best model (the last one without a dev set), eval mode
    tokenizer: Tokenizer
    history: list[dict]                   # the logged records (metrics.jsonl)
    best: dict                            # the best dev evaluation, with its "step"
    baseline: dict                        # the majority-class baseline on the dev set
    notes: list[str]                      # what was initialised, skipped, truncated


# ---- batches and weights ---------------------------------------------------------------------------------------

class ExampleBatches:
    """The batch of step s: B rows of an epoch's permutation (each epoch a new one), a pure function of (seed, s)
    so that a resumed run sees the same data — the same `grain` order as pretraining's `Batches`."""

    def __init__(self, arrays: dict[str, np.ndarray], batch_size: int, seed: int):
        self.arrays, self.batch_size = arrays, batch_size
        self.size = len(arrays["input_ids"])
        if self.size < batch_size:
            raise ValueError(f"{self.size} training examples, fewer than one batch of {batch_size}")
        self.order = grain.MapDataset.range(self.size).shuffle(seed=seed).repeat().batch(batch_size)

    def __call__(self, step: int) -> dict[str, np.ndarray]:
        rows = self.order[step]
        return {k: v[rows] for k, v in self.arrays.items()}


def task_model_class(config, head: str) -> type:
    """The family's class with this head, e.g. (a BertConfig, "ForTokenClassification") → BertForTokenClassification."""
    task = next(task for task, suffix in auto.FINETUNING_TASKS.items() if suffix == head)
    return auto.model_class(config.model_type, task)


def pretrained_task_model(model_class: type, config, model_dir: Path, *, dtype, seed: int) -> tuple[nnx.Module, list[str]]:
    """The task model with a checkpoint loaded by the shared loader (`checkpoints.hf.load_state_dict`, mis-shaped
    weights initialised), stricter on one point: every encoder weight must be in the checkpoint with its shape; only
    the head and a pooler may start from their initialisation. Returns the model and notes naming what was
    initialised and what of the checkpoint was not used. Raises CheckpointError naming the encoder weights missing."""
    model = model_class(config, dtype=dtype, rngs=nnx.Rngs(seed))
    info = hf.load_state_dict(model, hf.read_state_dict(model_dir), ignore_mismatched_sizes=True)
    prefix = model.base_model_prefix + "."
    shapes = {k: tuple(v.shape) for k, v in hf.model_state_dict(model).items()}
    mismatched = {key: checkpoint_shape for key, checkpoint_shape, _ in info["mismatched_keys"]}
    fresh = sorted([*info["missing_keys"], *mismatched])
    missing = [f"{k} {shapes[k]}" + (f", checkpoint {mismatched[k]}" if k in mismatched else "")
               for k in fresh if k.startswith(prefix) and not k.startswith(prefix + "pooler.")]
    if missing:
        raise hf.CheckpointError(f"the checkpoint lacks encoder weights of {type(model).__name__} "
                                 f"({len(missing)}):\n  " + "\n  ".join(missing))
    unused = sorted({".".join(k.split(".")[:2]) for k in info["unexpected_keys"]})  # by module
    notes = [f"initialised from scratch: {', '.join(fresh)}"] if fresh else []
    return model, notes + ([f"not used from the checkpoint: {', '.join(unused)}"] if unused else [])


def span_loss_and_accuracy(model, batch: dict, key) -> tuple[jax.Array, jax.Array]:
    """The span loss, and the fraction of windows whose start and end are both predicted exactly."""
    out = model(**batch_inputs(model, batch))             # inputs, start_positions, end_positions
    return out.loss, span_accuracy(out, batch)


def span_accuracy(out, batch: dict) -> jax.Array:
    hit = (jnp.argmax(out.start_logits, -1) == batch["start_positions"]) & \
          (jnp.argmax(out.end_logits, -1) == batch["end_positions"])
    return hit.mean()


def task_distillation_metric(outputs: tuple[str, ...], alpha: float, temperature: float):
    """(model, batch, key) → (α · task loss + (1 − α) · soft-label loss, accuracy); the batch carries the teacher's
    `teacher_<output>` arrays (not model inputs: `batch_inputs` passes the model's own fields only)."""
    def metric(model, batch, key):
        out = model(**batch_inputs(model, batch))
        where = batch["labels"] != IGNORE_INDEX if "labels" in batch else None
        soft = sum(soft_target_loss(getattr(out, name), batch["teacher_" + name], temperature, where)
                   for name in outputs) / len(outputs)
        accuracy = masked_accuracy(out.logits, batch["labels"]) if "labels" in batch else span_accuracy(out, batch)
        return alpha * out.loss + (1 - alpha) * soft, accuracy
    return metric


def _teacher_vocab(teacher_dir: Path) -> dict[str, int] | None:
    """The teacher directory's vocabulary, or None when it holds no tokenizer."""
    try:
        return AutoTokenizer.from_pretrained(teacher_dir).get_vocab()
    except FileNotFoundError:
        return None


def teacher_predictions(config: FinetuneConfig, task, tokenizer, arrays: dict[str, np.ndarray]) -> dict:
    """The fine-tuned teacher's outputs on every training row, `teacher_<output>` (n, …) float32. The teacher must
    have the task's head, the student's labels in the same order, and the student's vocabulary."""
    teacher_dir = Path(config.teacher)
    teacher = hf.from_pretrained(teacher_dir, dtype=jnp.dtype(config.dtype))
    if not type(teacher).__name__.endswith(task.head):
        raise ValueError(f"the teacher {teacher_dir} is a {type(teacher).__name__}, not a {task.head[3:]} model")
    if _teacher_vocab(teacher_dir) != tokenizer.get_vocab():
        raise ValueError(f"the teacher {teacher_dir} does not have the student's vocabulary: both must read the same "
                         f"word pieces")
    if task.labels is not None:
        names = teacher.config.id2label
        if [names.get(i) for i in range(len(task.labels))] != task.labels or len(names) != len(task.labels):
            raise ValueError(f"the teacher's labels {[names[i] for i in sorted(names)]} are not the student's "
                             f"{task.labels}")
    out = batched_forward(teacher, arrays, config.eval_batch_size, fields=task.outputs)
    return {f"teacher_{name}": values for name, values in out.items()}


# ---- the tasks: read, encode, evaluate ---------------------------------------------------------------------------

class Task:
    """A task's examples — a seeded subset (`train_limit`) of the training file, the first `eval_limit` of the dev
    file — and the classes the training data names (None for question answering). Subclasses set `read` (file →
    examples) and `label_names`, and encode, score a baseline and evaluate."""

    read = label_names = None

    def __init__(self, config: FinetuneConfig, tokenizer, rng: np.random.Generator):
        self.config, self.tokenizer = config, tokenizer
        self.train_examples = _subset(self.read(config.train_file), config.train_limit, rng)
        self.eval_examples = self.read(config.eval_file)[:config.eval_limit] if config.eval_file else None
        self.data_labels = self.label_names(self.train_examples) if self.label_names else None
        self.notes = []


class GlueTask(Task):
    head, selects, metric, outputs = TASKS["glue"], "accuracy", staticmethod(loss_and_accuracy), ("logits",)
    read, label_names = staticmethod(glue.read_tsv), staticmethod(glue.label_names)

    def encode(self, label2id: dict[str, int]) -> dict[str, np.ndarray]:
        max_length = self.config.max_length or 128
        if self.eval_examples is not None:
            self.eval_arrays = glue.encode(self.tokenizer, self.eval_examples, max_length, label2id)
        return glue.encode(self.tokenizer, self.train_examples, max_length, label2id)

    def baseline(self) -> dict:
        return {"accuracy": metrics.majority_baseline([e.label for e in self.train_examples],
                                                      [e.label for e in self.eval_examples])}

    def evaluate(self, model) -> dict:
        return classification_scores(model, self.eval_arrays, self.config.eval_batch_size)


class NerTask(Task):
    head, selects, metric, outputs = TASKS["ner"], "f1", staticmethod(loss_and_accuracy), ("logits",)
    read, label_names = staticmethod(ner.read_conll), staticmethod(ner.label_names)

    def encode(self, label2id: dict[str, int]) -> dict[str, np.ndarray]:
        max_length = self.config.max_length or 128
        train = ner.encode(self.tokenizer, self.train_examples, label2id, max_length)
        self._note(train, "training")
        if self.eval_examples is not None:
            self.eval_encoded = ner.encode(self.tokenizer, self.eval_examples, label2id, max_length)
            self._note(self.eval_encoded, "dev")
        return train.arrays

    def _note(self, encoded: ner.EncodedSentences, split: str) -> None:
        if encoded.unseen_words:
            self.notes.append(f"{encoded.unseen_words} {split} words have no word piece or fall past --max-length: "
                              f"predicted O")

    def baseline(self) -> dict:
        words = [t for s in self.eval_examples for t in s.tags]
        return {"f1": 0.0, "word_accuracy": float(np.mean([t == ner.OUTSIDE for t in words]))}

    def evaluate(self, model) -> dict:
        logits = batched_forward(model, self.eval_encoded.arrays, self.config.eval_batch_size)["logits"]
        names = {i: name for i, name in enumerate(self.labels)}
        predicted = ner.word_tags(logits.argmax(-1), self.eval_encoded.first_pieces, names)
        gold = [s.tags for s in self.eval_examples]
        scores = metrics.entity_metrics(predicted, gold)
        words = [(p == g) for ps, gs in zip(predicted, gold) for p, g in zip(ps, gs)]
        return {"precision": scores["precision"], "recall": scores["recall"], "f1": scores["f1"],
                "word_accuracy": float(np.mean(words))}


class SquadTask(Task):
    head, selects, metric = TASKS["squad"], "f1", staticmethod(span_loss_and_accuracy)
    outputs = ("start_logits", "end_logits")
    read = staticmethod(squad.read_squad)

    def _features(self, examples) -> squad.Features:
        c = self.config
        return squad.prepare_features(self.tokenizer, examples, max_length=c.max_length or 384,
                                      doc_stride=c.doc_stride, max_query_length=c.max_query_length)

    def encode(self, label2id) -> dict[str, np.ndarray]:
        train = self._features(self.train_examples)
        if train.skipped:
            self.notes.append(f"skipped {len(train.skipped)} training questions whose answer is not at its "
                              f"answer_start, e.g. {train.skipped[0]}")
        if self.eval_examples is not None:
            self.eval_features = self._features(self.eval_examples)
        return {k: v[train.answered] for k, v in train.arrays.items()}

    def baseline(self) -> dict:
        return {}

    def evaluate(self, model) -> dict:
        out = batched_forward(model, self.eval_features.arrays, self.config.eval_batch_size,
                              fields=("start_logits", "end_logits"))
        answers = squad.predictions(self.eval_examples, self.eval_features, out["start_logits"], out["end_logits"],
                                    max_answer_length=self.config.max_answer_length)
        return metrics.squad_metrics(answers, {e.id: e.answers for e in self.eval_examples})


def _subset(examples: list, limit: int | None, rng: np.random.Generator) -> list:
    if limit is None or limit >= len(examples):
        return examples
    return [examples[i] for i in sorted(rng.permutation(len(examples))[:limit])]


# ---- the run -----------------------------------------------------------------------------------------------------

def build(config: FinetuneConfig):
    """Check the arguments, read and encode the data, build the task model from the checkpoint. Raises ValueError
    for a field outside its range (`minibert.options`) or an unknown task or dtype, FileNotFoundError for a model
    or teacher directory that is not one, FileExistsError for an output holding checkpoints without `resume`."""
    check(config)
    check(config.train)
    if config.task not in TASKS:
        raise ValueError(f"unknown task {config.task!r}; choose from {', '.join(TASKS)}")
    if config.dtype not in ("float32", "bfloat16"):
        raise ValueError(f"dtype must be float32 or bfloat16, not {config.dtype!r}")
    model_dir = Path(config.model)
    if config.teacher is not None and not (Path(config.teacher) / "config.json").is_file():
        raise FileNotFoundError(f"--teacher {config.teacher} is not a model directory (no config.json)")
    if config.eval_file and config.train.eval_every % config.train.log_every:
        raise ValueError(f"eval_every ({config.train.eval_every}) must be a multiple of log_every "
                         f"({config.train.log_every}): the dev set is scored when metrics are logged")
    out = Path(config.train.output_dir)
    if (out / "checkpoints").exists() and any((out / "checkpoints").iterdir()) and not config.resume:
        raise FileExistsError(f"{out} already holds checkpoints: pass --resume to continue, or choose another --output")
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    task = {"glue": GlueTask, "ner": NerTask, "squad": SquadTask}[config.task](
        config, tokenizer, np.random.default_rng(config.train.seed))

    model_config = hf.read_config(model_dir)
    model_class = task_model_class(model_config, task.head)
    labels = _labels(model_config, model_class, task.data_labels)
    model_config.architectures = [model_class.__name__]
    if labels is not None:
        finetuning.set_labels(model_config, labels)
    task.labels = labels
    model, notes = pretrained_task_model(model_class, model_config, model_dir, dtype=jnp.dtype(config.dtype),
                                         seed=config.train.seed)
    task.notes += notes

    label2id = None if labels is None else {name: i for i, name in enumerate(labels)}
    arrays = task.encode(label2id)
    arrays.update(encoder_inputs(model, arrays))
    if config.teacher:
        arrays.update(teacher_predictions(config, task, tokenizer, arrays))
    n = len(arrays["input_ids"])
    if config.epochs is not None:
        config.train.steps = max(1, math.ceil(config.epochs * n / config.batch_size))
    if config.warmup_ratio is not None:
        config.train.warmup_steps = int(config.warmup_ratio * config.train.steps)
    return model, tokenizer, task, ExampleBatches(arrays, config.batch_size, config.train.seed)


def _labels(model_config, model_class, data_labels: list[str] | None) -> list[str] | None:
    """The classes: a fine-tuned checkpoint of this head keeps its own (named) ones; otherwise the training
    data's (None for question answering)."""
    if data_labels is None:
        return None
    names = model_config.id2label
    named = any(name != f"LABEL_{i}" for i, name in names.items())
    if (model_config.architectures or [None])[0] == model_class.__name__ and named:
        return [names[i] for i in sorted(names)]
    return data_labels


def finetune(config: FinetuneConfig) -> FinetuneResult:
    """Run the whole job: train, evaluate on the dev set at every evaluation point, keep the best."""
    model, tokenizer, task, batches = build(config)
    out = Path(config.train.output_dir)
    has_dev = config.eval_file is not None
    baseline = task.baseline() if has_dev else {}
    results_file = out / "eval_results.json"
    best = {"step": None}
    if config.resume and results_file.is_file():
        best = json.loads(results_file.read_text(encoding="utf-8"))["best"]

    def evaluator(current, step: int) -> dict:
        scores = task.evaluate(current)
        if best.get(task.selects) is None or scores[task.selects] > best[task.selects]:
            best.clear()
            best.update(scores, step=step)
            hf.save_pretrained(current, out)
            tokenizer.save_pretrained(out)
            results_file.write_text(json.dumps({"best": best, "baseline": baseline, "notes": task.notes}, indent=2)
                                    + "\n", encoding="utf-8")
        return {f"eval_{k}": v for k, v in scores.items()}

    metric = (task_distillation_metric(task.outputs, config.alpha, config.temperature) if config.teacher
              else task.metric)
    trainer = Trainer(model, config.train, batches, metric=metric, evaluator=evaluator if has_dev else None,
                      desc=f"finetune {config.task}")
    history = trainer.run(resume=config.resume)
    if has_dev:
        model = hf.from_pretrained(out, dtype=jnp.dtype(config.dtype))
    else:
        model = trainer.trained_model()
        hf.save_pretrained(model, out)
        tokenizer.save_pretrained(out)
    return FinetuneResult(model, tokenizer, history, best, baseline, task.notes)


# ---- scoring a fine-tuned classifier -----------------------------------------------------------------------------

def evaluate_classifier(model, tokenizer, eval_file: str | Path, *, max_length: int = 128, batch_size: int = 64,
                        limit: int | None = None) -> dict:
    """Accuracy and F1 (metrics.classification_metrics) of a *ForSequenceClassification model on a GLUE-style TSV
    (its first `limit` rows), its classes named by the model's config (`id2label`)."""
    if not type(model).__name__.endswith(TASKS["glue"]):
        raise ValueError(f"scoring a GLUE-style TSV needs a sequence-classification model, not {type(model).__name__}")
    examples = glue.read_tsv(eval_file)[:limit]
    label2id = {name: i for i, name in model.config.id2label.items()}
    return classification_scores(model, glue.encode(tokenizer, examples, max_length, label2id), batch_size)


def classification_scores(model, arrays: dict[str, np.ndarray], batch_size: int) -> dict:
    """Accuracy and F1 of a sequence classifier on encoded GLUE rows (with their `labels`)."""
    logits = batched_forward(model, arrays, batch_size)["logits"]
    return metrics.classification_metrics(logits.argmax(-1), arrays["labels"], logits.shape[-1])
