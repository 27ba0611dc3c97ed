"""`minibert distill`: a pretrained teacher → a smaller student, by MobileBERT's recipe or DistilBERT's.

    stage (Sun et al. 2020)         loss (distillation.py)            trains                         updates
    layer-wise transfer (§3.5)      Σ_ℓ L_FMT^ℓ + L_AT^ℓ              the student and projections    transfer_steps
      or progressive (§3.6)         L_FMT^ℓ + L_AT^ℓ, ℓ = 1 … L        layer ℓ (+ embeddings at ℓ=1)  transfer_steps / L each
    pretraining distillation (§3.5) α L_MLM + (1 − α) L_KD            the student                    train.steps

The student is a family/size preset (`presets.py`) with the teacher's vocabulary; the data is the pretraining
pipeline's (packed sequences, masking at the student family's rate) tokenized with the teacher's tokenizer, each
stage continuing the data stream where the previous one stopped. Every stage is a `Trainer` run (jit step, data
parallel, orbax checkpoints and metrics.jsonl under OUTPUT/stages/<stage>), so `--resume` continues the stage that
was running (finished stages restore their last state). At every evaluation the student's held-out MLM loss and
accuracy are logged (`student_eval_loss`, `student_eval_accuracy`). OUTPUT ends as a Hugging Face directory of the
student with the teacher's tokenizer files.

`--recipe distilbert` (Sanh et al. 2019): the student is a DistilBERT of the teacher's width and half its layers,
initialised from every other teacher layer (`models/distilbert.py` `from_teacher`; a BERT teacher), trained in one
stage on the triple loss α_ce L_KD + α_mlm L_MLM + α_cos L_cos (`DISTILBERT_WEIGHTS`, the authors' 5, 2, 1; the
temperature is `--temperature`, 2 in their script); `--family`, `--size`, `--transfer-steps`, `--progressive` and
`--alpha` belong to the MobileBERT recipe.

Task distillation (soft labels for fine-tuning) is `minibert finetune --teacher` (training/finetune.py).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import jax.numpy as jnp
from flax import nnx

from minibert.checkpoints import hf
from minibert.distillation import Distiller, cosine_loss, soft_target_loss
from minibert.models import distilbert
from minibert.losses import IGNORE_INDEX
from minibert.nn.attention import forward_with_attention_maps, record_attention_maps, set_attention_implementation
from minibert.options import AT_LEAST_0, POSITIVE, UNIT, bounded
from minibert.tokenization import AutoTokenizer
from minibert.training.batch import Batch, model_inputs
from minibert.training.loop import TrainConfig, Trainer, masked_accuracy
from minibert.training.pretrain import PretrainConfig, corpus_batches, plan, prepared_corpus, set_special_token_ids


@dataclasses.dataclass
class DistillConfig(PretrainConfig):
    """The student's preset (`family`, `size`), data and training options as in pretraining, plus:"""
    teacher: str = ""                     # a pretrained masked LM directory with its tokenizer
    recipe: str = "mobilebert"            # "mobilebert" (layer-wise transfer, then L_PD) or "distilbert"
    family: str = "mobilebert"
    transfer_steps: int = bounded(300, AT_LEAST_0)   # layer-wise transfer updates before pretraining distillation
    progressive: bool = False             # transfer one layer at a time, the layers below frozen (§3.6)
    alpha: float = bounded(0.5, UNIT)     # weight of the MLM loss in L_PD (MobileBERT §3.5 uses 0.5)
    temperature: float = bounded(1.0, POSITIVE)      # softmax temperature of L_KD
    # the `minibert distill` defaults (train.steps: the pretraining-distillation updates)
    train: TrainConfig = dataclasses.field(default_factory=lambda: TrainConfig(
        steps=300, warmup_steps=30, eval_every=100, save_every=200, output_dir="runs/distilled"))


@dataclasses.dataclass
class Stage:
    name: str
    steps: int
    metric: object                        # (distiller, batch, key) → (loss, masked-token accuracy)
    trainable: object                     # nnx filter of the parameters this stage updates
    transfer: bool                        # records attention maps (the transfer losses need them)


STUDENT = nnx.All(nnx.Param, lambda path, value: path[0] != "teacher")


def layer_parameters(index: int):
    """The parameters of student layer `index` (0-based) and of its projection; the embeddings too at layer 0."""
    def keep(path, value) -> bool:
        if path[0] == "projections":
            return path[1] == index
        if path[0] != "student":
            return False
        in_layer = any(a in ("layer", "layers") and b == index for a, b in zip(path, path[1:]))
        return in_layer or (index == 0 and any(str(k).startswith("embeddings") for k in path))
    return nnx.All(nnx.Param, keep)


def transfer_metric(layers: list[int] | None):
    def metric(distiller, batch, key):
        student, student_maps, teacher, teacher_maps = distiller(batch)
        loss = distiller.transfer_loss(student, student_maps, teacher, teacher_maps, batch["attention_mask"], layers)
        return loss, masked_accuracy(student.logits, batch["labels"])
    return metric


def pretraining_distillation_metric(alpha: float, temperature: float):
    def metric(distiller, batch, key):
        student, _, teacher, _ = distiller(batch)
        kd = soft_target_loss(student.logits, teacher.logits, temperature, where=batch["labels"] != IGNORE_INDEX)
        return alpha * student.loss + (1 - alpha) * kd, masked_accuracy(student.logits, batch["labels"])
    return metric


DISTILBERT_WEIGHTS = {"ce": 5.0, "mlm": 2.0, "cos": 1.0}   # α of the triple loss (Sanh et al.'s training script)
RECIPES = ("mobilebert", "distilbert")


def triple_loss_metric(temperature: float):
    """DistilBERT's α_ce L_KD + α_mlm L_MLM + α_cos L_cos (the last hidden states, real tokens)."""
    def metric(distiller, batch, key):
        student, _, teacher, _ = distiller(batch)
        kd = soft_target_loss(student.logits, teacher.logits, temperature, where=batch["labels"] != IGNORE_INDEX)
        cos = cosine_loss(student.hidden_states[-1], teacher.hidden_states[-1], batch["attention_mask"])
        w = DISTILBERT_WEIGHTS
        return w["ce"] * kd + w["mlm"] * student.loss + w["cos"] * cos, masked_accuracy(student.logits, batch["labels"])
    return metric


def stages(config: DistillConfig, layers: int) -> list[Stage]:
    if config.recipe == "distilbert":
        return [Stage("distill", config.train.steps, triple_loss_metric(config.temperature), STUDENT, False)]
    out = []
    if config.transfer_steps and config.progressive:
        steps = config.transfer_steps // layers
        out += [Stage(f"transfer-layer-{layer}", steps, transfer_metric([layer]), layer_parameters(layer - 1), True)
                for layer in range(1, layers + 1)]
    elif config.transfer_steps:
        out.append(Stage("transfer", config.transfer_steps, transfer_metric(None), STUDENT, True))
    if config.train.steps:
        out.append(Stage("distill", config.train.steps, pretraining_distillation_metric(config.alpha, config.temperature),
                         STUDENT, False))
    return out


class _Continued:
    """The data stream from micro-step `offset` on: stage k starts where stage k − 1 stopped."""

    def __init__(self, batches, offset: int):
        self.batches, self.offset, self.batch_size = batches, offset, batches.batch_size

    def __call__(self, step: int) -> Batch | dict:
        return self.batches(self.offset + step)


def build(config: DistillConfig):
    """Check the arguments, load the teacher and its tokenizer, read the corpus, build the student and batches."""
    teacher_dir = Path(config.teacher)
    if not config.teacher or not (teacher_dir / "config.json").is_file():
        raise FileNotFoundError(f"--teacher {config.teacher!r} is not a model directory (no config.json)")
    if config.objective not in (None, "mlm"):
        raise ValueError(f"distillation trains a masked LM student; objective {config.objective!r} is not supported")
    if config.recipe not in RECIPES:
        raise ValueError(f"--recipe must be one of {', '.join(RECIPES)}, not {config.recipe!r}")
    if config.recipe == "distilbert" and config.progressive:
        raise ValueError("--progressive is MobileBERT's layer-wise transfer: the distilbert recipe has no transfer stage")
    if config.recipe == "distilbert" and (config.config_overrides or config.config_file):
        raise ValueError("the distilbert recipe's student is half the teacher (from_teacher): it takes no config "
                         "overrides")
    config = dataclasses.replace(config, objective="mlm", vocab=str(teacher_dir))
    p = plan(config)                                    # checks the ranges of every field, alpha's too
    layers = p.model_config.num_hidden_layers
    if config.progressive and config.transfer_steps < layers:
        raise ValueError(f"progressive transfer needs at least one update per layer: --transfer-steps "
                         f"{config.transfer_steps} < {layers} layers")
    schedule = stages(config, layers)
    if not schedule:
        raise ValueError("nothing to train: --steps and --transfer-steps are both 0")

    dtype = jnp.dtype(config.dtype)
    teacher = hf.from_pretrained(teacher_dir, dtype=dtype)
    name = type(teacher).__name__
    if not (name.endswith("ForMaskedLM") or name.endswith("ForPreTraining")) or name.startswith("Electra"):
        raise ValueError(f"the teacher must be a masked language model (…ForMaskedLM or BERT/MobileBERT "
                         f"…ForPreTraining), got {name}")
    positions = getattr(teacher.config, "max_position_embeddings", None)
    if positions is not None and config.seq_len > positions:
        raise ValueError(f"--seq-len {config.seq_len} exceeds the teacher's max_position_embeddings {positions}")
    tokenizer = AutoTokenizer.from_pretrained(teacher_dir)
    p.model_config.vocab_size = teacher.config.vocab_size
    set_special_token_ids(p.model_config, tokenizer)
    if not teacher.accepts_masked_positions():
        p.max_predictions = None           # both models must score the same positions: a dense head then
    corpus, _ = prepared_corpus(config)                 # prepared with (or checked against) the teacher's vocabulary
    batches, eval_batch = corpus_batches(config, p, tokenizer, corpus)
    rngs = nnx.Rngs(config.train.seed)
    if config.recipe == "distilbert":
        student = distilbert.from_teacher(teacher, dtype=dtype, rngs=rngs)   # raises for a teacher that is not BERT
    else:
        student = p.model_class(p.model_config, dtype=dtype, rngs=rngs)
    distiller = Distiller(teacher, student, rngs=rngs)
    set_attention_implementation(distiller, p.attention)
    return distiller, tokenizer, batches, eval_batch, schedule


def distill(config: DistillConfig):
    """Run every stage; returns (the student masked LM, tokenizer, the logged records with their "stage")."""
    distiller, tokenizer, batches, eval_batch, schedule = build(config)
    out = Path(config.train.output_dir)

    @nnx.jit                                     # compiled once per stage layout, not dispatched op by op
    def student_scores(student, batch):
        out, _ = forward_with_attention_maps(student, **model_inputs(student, batch))
        return out.loss, masked_accuracy(out.logits, batch["labels"])

    def evaluator(current, step: int) -> dict:
        loss, accuracy = student_scores(current.student, eval_batch)
        return {"student_eval_loss": float(loss), "student_eval_accuracy": float(accuracy)}

    history, offset = [], 0
    for stage in schedule:
        record_attention_maps(distiller, stage.transfer)
        train = dataclasses.replace(config.train, steps=stage.steps, output_dir=str(out / "stages" / stage.name),
                                    warmup_steps=min(config.train.warmup_steps, stage.steps // 10))
        trainer = Trainer(distiller, train, _Continued(batches, offset), metric=stage.metric,
                          evaluator=evaluator if eval_batch is not None else None, desc=f"distill {stage.name}",
                          trainable=stage.trainable)
        history += [{"stage": stage.name, **record} for record in trainer.run(resume=config.resume)]
        distiller = trainer.trained_model()
        offset += stage.steps * config.train.grad_accumulation
    record_attention_maps(distiller, False)
    student = distiller.student
    student.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return student, tokenizer, history

