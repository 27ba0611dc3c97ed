"""The training loop: one jit-compiled step with donated buffers, data parallel, resumable, plain.

    state  = (parameters, optimizer state)                  replicated on every device
    batch  = masked examples of this step                   sharded along `data`
    step(state, batch) → state', loss                       XLA all-reduces the gradients

Dropout draws from a key folded with the step number, and the data of step s is a pure function of
(seed, s) (training/data.py), so a checkpoint's step is enough to continue exactly where a run stopped.
Gradient accumulation (`optax.MultiSteps`) turns k micro-steps into one optimizer update.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from tqdm.auto import tqdm

from minibert.checkpoints import train_state
from minibert.options import AT_LEAST_0, AT_LEAST_1, NON_NEGATIVE, POSITIVE, bounded, check
from minibert.training import optim, sharding
from minibert.training.batch import Batch, model_inputs
from minibert.training.data import prefetch


@dataclasses.dataclass
class TrainConfig:
    """The loop's options; each numeric one declares its valid range (`minibert.options`), checked by `Trainer`
    (and earlier by the commands' `build`), so a bad value is a ValueError naming the field, not a crash mid-run.
    The frequencies count micro-steps (updates × grad_accumulation)."""
    steps: int = bounded(1000, AT_LEAST_0)                 # optimizer updates
    learning_rate: float = bounded(1e-3, POSITIVE)
    warmup_steps: int = bounded(100, AT_LEAST_0)
    decay: str = "linear"                                  # or "cosine"
    weight_decay: float = bounded(0.01, NON_NEGATIVE)
    clip_norm: float = bounded(1.0, POSITIVE)              # global gradient norm
    grad_accumulation: int = bounded(1, AT_LEAST_1)        # micro-batches per update
    seed: int = bounded(0, AT_LEAST_0)
    log_every: int = bounded(10, AT_LEAST_1)
    eval_every: int = bounded(100, AT_LEAST_1)
    save_every: int = bounded(200, AT_LEAST_1)
    output_dir: str = "runs/minibert"


def loss_and_accuracy(model, batch: Batch | dict, key: jax.Array) -> tuple[jax.Array, jax.Array]:
    """The model's loss on a batch (the fields it declares: `model_inputs`), and its accuracy on the labels
    (masked tokens, classes or tags). Models that sample (ELECTRA's generator) say `needs_key` and get `key`."""
    inputs = model_inputs(model, batch)
    if getattr(model, "needs_key", False):
        inputs["key"] = key
    out = model(**inputs)
    return out.loss, masked_accuracy(out.logits, batch["labels"])


def masked_accuracy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """The fraction of labelled positions (label ≥ 0) whose argmax is the label; logits (..., classes)."""
    scored = labels >= 0
    return jnp.sum((jnp.argmax(logits, -1) == labels) & scored) / jnp.maximum(jnp.sum(scored), 1)


class Trainer:
    """Owns the model, its optimizer and the compiled steps; `run` trains, evaluates, checkpoints, logs.

    `metric(model, batch, key) -> (loss, accuracy)` is what the step differentiates and logs (default: the
    pretraining loss and masked-token accuracy). `evaluator(model, step) -> dict`, when given, runs at every
    evaluation point on the current model (eval mode) and its values join the logged record — fine-tuning
    uses it to score the dev set and keep the best checkpoint. `desc` labels the progress bar. `trainable` (an nnx
    filter, default every `nnx.Param`) is what the optimizer updates — distillation freezes the teacher. Raises
    ValueError for a `config` field outside its range, before anything is compiled."""

    def __init__(self, model: nnx.Module, config: TrainConfig, batches, eval_batch: dict | None = None, *,
                 metric=loss_and_accuracy, evaluator=None, desc: str = "pretrain", trainable=nnx.Param):
        self.config, self.batches, self.eval_batch = config, batches, eval_batch
        self.metric, self.evaluator, self.desc, self.trainable = metric, evaluator, desc, trainable
        check(config)
        self.mesh = sharding.data_mesh()
        sharding.check_batch_size(batches.batch_size, self.mesh)
        self.schedule = optim.learning_rate_schedule(config.learning_rate, config.steps, config.warmup_steps,
                                                     config.decay)
        tx = optim.adamw(self.schedule, weight_decay=config.weight_decay, clip_norm=config.clip_norm)
        if config.grad_accumulation > 1:
            tx = optax.MultiSteps(tx, every_k_schedule=config.grad_accumulation)
        self.model = model
        model.eval()
        self.eval_graphdef = nnx.graphdef((model, nnx.Optimizer(model, tx, wrt=trainable)))
        model.train()
        optimizer = nnx.Optimizer(model, tx, wrt=trainable)
        self.graphdef, self.rng_state, state = nnx.split((model, optimizer), nnx.RngState, ...)
        self.state = jax.device_put(state, sharding.replicated(self.mesh))
        self.dropout_key = jax.random.key(config.seed)
        self._train_step = jax.jit(self._step, donate_argnums=0)
        self._eval_step = jax.jit(self._evaluate)
        self.checkpoints = train_state.manager(Path(config.output_dir) / "checkpoints")

    # ---- the compiled functions ---------------------------------------------------------------

    def _step(self, state, rng_state, batch, micro_step):
        model, optimizer = nnx.merge(self.graphdef, rng_state, state)
        dropout_key, sample_key = jax.random.split(jax.random.fold_in(self.dropout_key, micro_step))
        nnx.reseed(model, dropout=dropout_key)
        differentiate = nnx.value_and_grad(self.metric, argnums=nnx.DiffState(0, self.trainable), has_aux=True)
        (loss, accuracy), grads = differentiate(model, batch, sample_key)
        optimizer.update(model, grads)
        parameters = nnx.state(model, nnx.Param)
        finite = jnp.isfinite(loss) & jnp.isfinite(optax.tree.norm(grads)) & jnp.isfinite(optax.tree.norm(parameters))
        _, _, state = nnx.split((model, optimizer), nnx.RngState, ...)
        return state, {"loss": loss, "accuracy": accuracy, "finite": finite}

    def _evaluate(self, state, rng_state, batch):
        model, _ = nnx.merge(self.eval_graphdef, rng_state, state)
        return self.metric(model, batch, self.dropout_key)

    def trained_model(self) -> nnx.Module:
        """The model with the current parameters, in eval mode."""
        model, _ = nnx.merge(self.eval_graphdef, self.rng_state, self.state)
        return model

    # ---- the run -------------------------------------------------------------------------------

    def evaluate(self) -> dict:
        """Held-out loss, accuracy and perplexity on `eval_batch`, run in chunks of the training batch's rows (so
        that a large held-out batch costs no more memory than a training step), each chunk weighted by its
        labelled positions: the mean over every labelled token of the batch, as one pass would give."""
        rows, size = len(self.eval_batch["input_ids"]), self.batches.batch_size // jax.process_count()
        chunks = [jax.tree.map(lambda x: x[i:i + size], self.eval_batch) for i in range(0, rows, size)]
        results = [self._eval_step(self.state, self.rng_state, self._put(chunk)) for chunk in chunks]
        weights = [max(int(np.sum(np.asarray(chunk["labels"]) >= 0)), 1) for chunk in chunks]
        loss, accuracy = np.average(jax.device_get(results), axis=0, weights=weights)
        loss = float(loss)
        return {"eval_loss": loss, "eval_accuracy": float(accuracy), "eval_perplexity": math.exp(min(loss, 50.0))}

    def _put(self, batch: dict) -> dict:
        """This process's rows → global arrays sharded over `data` (every host feeds only its own slice)."""
        return sharding.global_batch(batch, self.mesh)

    def restore(self) -> int:
        """Load the latest checkpoint, if any; the micro-step to continue from."""
        step, state = train_state.restore(self.checkpoints, nnx.to_pure_dict(self.state))
        if step is not None:
            nnx.replace_by_pure_dict(self.state, state)
            self.state = jax.device_put(self.state, sharding.replicated(self.mesh))
        return step or 0

    def save(self, micro_step: int) -> None:
        train_state.save(self.checkpoints, micro_step, nnx.to_pure_dict(self.state))

    def run(self, resume: bool = False) -> list[dict]:
        """Train to `config.steps` updates; returns the logged metrics (also appended to metrics.jsonl)."""
        c = self.config
        total = c.steps * c.grad_accumulation
        start = self.restore() if resume else 0
        log_file = Path(c.output_dir) / "metrics.jsonl"
        log_file.parent.mkdir(parents=True, exist_ok=True)
        lead = jax.process_index() == 0          # one process logs; every process computes and checkpoints
        history, pending, last_good = [], [], start
        tokens, clock = 0, time.perf_counter()
        bar = tqdm(total=total, initial=start, desc=self.desc, unit="step", dynamic_ncols=True, disable=not lead)
        steps = range(start, total)
        transfer = lambda batch: (self._put(batch), int(batch["attention_mask"].sum()))
        for micro_step, (batch, real_tokens) in zip(steps, prefetch(self.batches, steps, transfer)):
            self.state, metrics = self._train_step(self.state, self.rng_state, batch, micro_step)
            pending.append((micro_step, metrics))
            tokens += real_tokens
            done = micro_step + 1
            logs = done % c.log_every == 0 or done == total or done % c.save_every == 0
            if logs:
                record = self._check(pending, last_good)
                pending = []
                elapsed = time.perf_counter() - clock          # training steps only: evaluations come after
                record.update(step=done, learning_rate=float(self.schedule(done // c.grad_accumulation)),
                              tokens_per_second=tokens / elapsed)
                tokens = 0
                if self.eval_batch is not None and (done % c.eval_every == 0 or done == total):
                    record.update(self.evaluate())
                if self.evaluator is not None and (done % c.eval_every == 0 or done == total):
                    record.update(self.evaluator(self.trained_model(), done))
                history.append(record)
                if lead:
                    with log_file.open("a") as f:
                        f.write(json.dumps(record) + "\n")
                bar.set_postfix(loss=f"{record['loss']:.3f}", tok_s=f"{record['tokens_per_second']:.0f}",
                                lr=f"{record['learning_rate']:.2e}")
            if done % c.save_every == 0 or done == total:
                self.save(done)
                last_good = done
            if logs:
                clock = time.perf_counter()                    # the next interval starts after evaluating and saving
            bar.update(1)
        bar.close()
        return history

    @staticmethod
    def _check(pending: list, last_good: int) -> dict:
        """Fetch the pending steps' metrics (one host sync); a NaN/inf stops the run, checkpoints intact."""
        fetched = jax.device_get([m for _, m in pending])
        for (step, _), m in zip(pending, fetched):
            if not m["finite"]:
                raise FloatingPointError(f"loss, gradients or parameters not finite at step {step + 1} (loss {m['loss']}); "
                                         f"the last good checkpoint is step {last_good}")
        return {"loss": float(np.mean([m["loss"] for m in fetched])),
                "accuracy": float(np.mean([m["accuracy"] for m in fetched]))}
