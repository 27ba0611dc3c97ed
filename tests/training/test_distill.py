"""`minibert distill` and task distillation (`minibert finetune --teacher`): the stages, what each trains, the
student directory, resume, bad input; slow: a student taught layer by layer by a tiny teacher ends with a lower
held-out MLM loss than the same student trained from scratch for the same number of updates."""

import json
import shutil
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import minibert
from minibert.cli import main
from minibert.distillation import soft_target_loss
from minibert.losses import cross_entropy
from minibert.models import finetuning
from minibert.training.distill import DistillConfig, build, distill
from minibert.training.finetune import FinetuneConfig, finetune, task_distillation_metric
from minibert.nn.attention import record_attention_maps
from minibert.training.loop import TrainConfig, Trainer
from minibert.training.pretrain import PretrainConfig, pretrain

SST2 = Path(__file__).parents[3] / "shared" / "data" / "SST-2"


def train_config(path, steps, **extra) -> TrainConfig:
    every = max(1, steps)                 # (frequencies must be ≥ 1 even when there are no steps)
    return TrainConfig(**{"steps": steps, "warmup_steps": max(1, steps // 10), "log_every": every, "eval_every": every,
                          "save_every": every, "output_dir": str(path), **extra})


@pytest.fixture(scope="module")
def teacher(corpus_and_vocab, tmp_path_factory):
    """A tiny BERT masked LM pretrained for a few steps on the corpus (its directory)."""
    corpus, vocab = corpus_and_vocab
    path = tmp_path_factory.mktemp("teacher")
    pretrain(PretrainConfig(family="bert", size="tiny", objective="mlm", corpus=[str(corpus)], vocab=str(vocab),
                            seq_len=32, batch_size=8, train=train_config(path, 6)))
    return path


def distill_config(teacher, corpus, path, **extra) -> DistillConfig:
    values = dict(teacher=str(teacher), family="mobilebert", size="tiny", corpus=[str(corpus)], seq_len=32,
                  batch_size=8, transfer_steps=4, train=train_config(path, 4))
    return DistillConfig(**{**values, **extra})


def test_distill_runs_each_stage_and_writes_the_student(teacher, corpus_and_vocab, tmp_path, capsys):
    corpus, _ = corpus_and_vocab
    out = tmp_path / "student"
    assert main(["distill", "--teacher", str(teacher), "--family", "mobilebert", "--corpus", str(corpus),
                 "--seq-len", "32", "--batch-size", "8", "--transfer-steps", "4", "--steps", "4", "--log-every", "2",
                 "--eval-every", "2", "--output", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "transfer: loss" in printed and "distill: loss" in printed and "student held-out MLM loss" in printed
    student = minibert.from_pretrained(out)
    assert type(student).__name__ == "MobileBertForMaskedLM"
    assert student.config.vocab_size == minibert.from_pretrained(teacher).config.vocab_size
    assert (out / "vocab.txt").read_text() == (teacher / "vocab.txt").read_text()
    for stage in ("transfer", "distill"):
        records = [json.loads(line) for line in (out / "stages" / stage / "metrics.jsonl").read_text().splitlines()]
        assert [r["step"] for r in records] == [2, 4] and all("student_eval_loss" in r for r in records)
    transformers = pytest.importorskip("transformers")
    assert type(transformers.AutoModelForMaskedLM.from_pretrained(out)).__name__ == "MobileBertForMaskedLM"


def test_the_distilbert_recipe_distils_half_the_teacher(teacher, corpus_and_vocab, tmp_path, capsys):
    """`--recipe distilbert`: a DistilBERT of half the teacher's layers, one stage on the triple loss."""
    corpus, _ = corpus_and_vocab
    out = tmp_path / "student"
    assert main(["distill", "--teacher", str(teacher), "--recipe", "distilbert", "--corpus", str(corpus),
                 "--seq-len", "32", "--batch-size", "8", "--steps", "4", "--eval-every", "4", "--output", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "distill: loss" in printed and "transfer" not in printed
    student, reference = minibert.from_pretrained(out), minibert.from_pretrained(teacher)
    assert type(student).__name__ == "DistilBertForMaskedLM"
    assert student.config.n_layers == (reference.config.num_hidden_layers + 1) // 2


def test_the_triple_loss_falls_on_held_out_batches(teacher, corpus_and_vocab, tmp_path):
    """α_ce L_KD + α_mlm L_MLM + α_cos L_cos on fixed batches the run never sees, dropout off, before and after 30
    updates (the training loss itself moves more from batch to batch than it falls in so few updates)."""
    corpus, _ = corpus_and_vocab
    config = distill_config(teacher, corpus, tmp_path, recipe="distilbert", temperature=2.0,
                            train=train_config(tmp_path, 30, learning_rate=1e-3))
    distiller, _, batches, _, (stage,) = build(config)
    fixed = [batches(1000 + i) for i in range(3)]

    def held_out(d):
        d.eval()
        return np.mean([float(stage.metric(d, b, None)[0]) for b in fixed])

    before = held_out(distiller)
    trainer = Trainer(distiller, config.train, batches, metric=stage.metric, trainable=stage.trainable)
    trainer.run()
    assert held_out(trainer.trained_model()) < before


def params(model) -> dict:
    return {path: np.array(v[...]) for path, v in nnx.to_flat_state(nnx.state(model, nnx.Param))}


def changed(before: dict, after: dict) -> set:
    return {path for path, value in after.items() if not np.array_equal(value, before[path])}


def run_stages(distiller, stages, batches, tmp_path):
    """Each stage as `distill` runs it, 2 updates each; yields (stage, parameters before, parameters after)."""
    for stage in stages:
        record_attention_maps(distiller, stage.transfer)
        before = params(distiller)
        trainer = Trainer(distiller, train_config(tmp_path / stage.name, 2), batches, metric=stage.metric,
                          trainable=stage.trainable)
        trainer.run()
        distiller = trainer.trained_model()
        yield stage, before, params(distiller)


def test_the_teacher_is_never_updated(teacher, corpus_and_vocab, tmp_path):
    corpus, _ = corpus_and_vocab
    distiller, _, batches, _, stages = build(distill_config(teacher, corpus, tmp_path / "s"))
    assert [stage.name for stage in stages] == ["transfer", "distill"]
    for stage, before, after in run_stages(distiller, stages, batches, tmp_path):
        updated = changed(before, after)
        assert updated and all(path[0] == "student" for path in updated), stage.name


def test_a_progressive_stage_trains_only_its_layer(teacher, corpus_and_vocab, tmp_path):
    corpus, _ = corpus_and_vocab
    distiller, _, batches, _, stages = build(distill_config(teacher, corpus, tmp_path / "p", progressive=True,
                                                            train=train_config(tmp_path / "p", 0)))
    assert [stage.name for stage in stages] == ["transfer-layer-1", "transfer-layer-2"]
    for (stage, before, after), layer in zip(run_stages(distiller, stages, batches, tmp_path), (0, 1)):
        updated = changed(before, after)
        in_layer = lambda path: path[:5] == ("student", "mobilebert", "encoder", "layer", layer)
        assert any(in_layer(path) for path in updated)
        assert all(in_layer(path) or (layer == 0 and "embeddings" in path) for path in updated), stage.name


def test_resume_after_a_kill_in_the_last_stage_ends_with_the_same_student(teacher, corpus_and_vocab, tmp_path):
    corpus, _ = corpus_and_vocab
    run = lambda name, **extra: distill(distill_config(teacher, corpus, tmp_path / name,
                                                       train=train_config(tmp_path / name, 4, save_every=2), **extra))
    whole, _, _ = run("whole")
    run("cut")
    shutil.rmtree(tmp_path / "cut" / "stages" / "distill" / "checkpoints" / "4")   # killed after step 2's checkpoint
    resumed, _, history = run("cut", resume=True)
    assert [(r["stage"], r["step"]) for r in history] == [("distill", 4)]       # the transfer stage was restored
    assert not changed(params(whole), params(resumed))


def test_bad_arguments_are_refused_before_training(teacher, corpus_and_vocab, tmp_path):
    corpus, vocab = corpus_and_vocab
    with pytest.raises(FileNotFoundError, match=r"is not a model directory"):
        build(distill_config(tmp_path / "nowhere", corpus, tmp_path / "a"))
    with pytest.raises(ValueError, match=r"alpha must be in \[0, 1\]"):
        build(distill_config(teacher, corpus, tmp_path / "b", alpha=1.5))
    with pytest.raises(ValueError, match=r"nothing to train"):
        build(distill_config(teacher, corpus, tmp_path / "c", transfer_steps=0, train=train_config(tmp_path / "c", 0)))
    with pytest.raises(ValueError, match=r"progressive transfer needs at least one update per layer"):
        build(distill_config(teacher, corpus, tmp_path / "d", progressive=True, transfer_steps=1))
    with pytest.raises(ValueError, match=r"unknown family 'gpt'"):
        build(distill_config(teacher, corpus, tmp_path / "e", family="gpt"))
    with pytest.raises(ValueError, match=r"exceeds the model's max_position_embeddings"):
        build(distill_config(teacher, corpus, tmp_path / "f", seq_len=100_000))
    nsp = tmp_path / "nsp"
    pretrain(PretrainConfig(family="electra", size="tiny", corpus=[str(corpus)], vocab=str(vocab), seq_len=32,
                            batch_size=8, train=train_config(nsp, 1)))
    with pytest.raises(ValueError, match=r"the teacher must be a masked language model .* got ElectraForPreTraining"):
        build(distill_config(nsp, corpus, tmp_path / "g"))


# ---- task distillation -----------------------------------------------------------------------------------------

def test_the_task_distillation_loss_mixes_hard_and_soft_labels():
    config = minibert.BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                 intermediate_size=32)
    finetuning.set_labels(config, ["a", "b", "c"])
    model = finetuning.BertForSequenceClassification(config, rngs=nnx.Rngs(0))
    model.eval()
    rng = np.random.default_rng(0)
    batch = {"input_ids": jnp.asarray(rng.integers(0, 50, (4, 7))), "attention_mask": jnp.ones((4, 7), jnp.int32),
             "token_type_ids": jnp.zeros((4, 7), jnp.int32), "labels": jnp.asarray([0, 2, 1, 2]),
             "teacher_logits": jnp.asarray(rng.normal(size=(4, 3)), jnp.float32)}
    loss, accuracy = task_distillation_metric(("logits",), 0.3, 2.0)(model, batch, None)
    logits = model(batch["input_ids"]).logits
    expected = 0.3 * cross_entropy(logits, batch["labels"]) + 0.7 * soft_target_loss(logits, batch["teacher_logits"], 2.0)
    np.testing.assert_allclose(loss, expected, rtol=1e-5)
    assert float(accuracy) == float(np.mean(np.argmax(logits, -1) == np.asarray(batch["labels"])))


def test_finetune_with_a_teacher_learns_its_soft_labels(teacher, tmp_path, capsys):
    finetuned = tmp_path / "teacher-sst2"
    common = ["--task", "glue", "--train", str(SST2 / "train_full.tsv"), "--eval", str(SST2 / "dev.tsv"),
              "--train-limit", "32", "--eval-limit", "16", "--steps", "2", "--max-length", "24", "--batch-size", "8",
              "--log-every", "2", "--eval-every", "2"]
    assert main(["finetune", "--model", str(teacher), "--output", str(finetuned), *common]) == 0
    student = tmp_path / "student-sst2"
    assert main(["finetune", "--model", str(teacher), "--teacher", str(finetuned), "--alpha", "0.5",
                 "--temperature", "2", "--output", str(student), *common]) == 0
    assert type(minibert.from_pretrained(student)).__name__ == "BertForSequenceClassification"

    config = lambda model_teacher, out: FinetuneConfig(
        task="glue", model=str(teacher), teacher=str(model_teacher), train_file=str(SST2 / "dev.tsv"), train_limit=16,
        epochs=None, batch_size=8, max_length=16, train=TrainConfig(steps=1, output_dir=str(tmp_path / out)))
    with pytest.raises(ValueError, match=r"is a BertForMaskedLM, not a SequenceClassification model"):
        finetune(config(teacher, "x"))
    other = tmp_path / "other-vocab"
    minibert.from_pretrained(finetuned).save_pretrained(other)
    (other / "vocab.txt").write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nthe\n")
    with pytest.raises(ValueError, match=r"does not have the student's vocabulary"):
        finetune(config(other, "y"))


# ---- the measurement --------------------------------------------------------------------------------------

@pytest.mark.slow
def test_layer_wise_transfer_beats_training_from_scratch(corpus_and_vocab, tmp_path):
    """Same student (MobileBERT tiny), same data and number of updates; the distilled one first learns the
    teacher's feature and attention maps layer by layer, then its MLM predictions (α = 0.5)."""
    corpus, vocab = corpus_and_vocab
    data = dict(corpus=[str(corpus)], seq_len=64, batch_size=16, held_out_documents=0.1)
    pretrain(PretrainConfig(family="bert", size="tiny", objective="mlm", vocab=str(vocab), **data,
                            train=train_config(tmp_path / "teacher", 1500)))
    _, _, scratch = pretrain(PretrainConfig(family="mobilebert", size="tiny", objective="mlm", vocab=str(vocab), **data,
                                            train=train_config(tmp_path / "scratch", 200)))
    _, _, distilled = distill(DistillConfig(teacher=str(tmp_path / "teacher"), family="mobilebert", size="tiny",
                                            transfer_steps=100, **data, train=train_config(tmp_path / "kd", 100)))
    from_scratch, taught = scratch[-1]["eval_loss"], distilled[-1]["student_eval_loss"]
    print(f"held-out MLM loss after 200 updates: from scratch {from_scratch:.3f}, distilled {taught:.3f}")
    # 5.755 against 5.791 since the pretraining presets have no attention dropout (issue 17), which speeds up the
    # student trained from scratch more than the distilled one (0.05 apart before)
    assert taught < from_scratch - 0.02
