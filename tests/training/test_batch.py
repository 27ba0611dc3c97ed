"""`Batch` is a pytree that reads like a dict; `model_inputs` passes a model exactly the fields it declares
(`batch_fields`), and refuses packed-document fields a model would ignore."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from minibert.config import BertConfig
from minibert.models import auto
from minibert.models.bert import BertForMaskedLM, BertForPreTraining, BertModel
from minibert.models.electra import ElectraConfig, ElectraPretrainer
from minibert.models.finetuning import BertForQuestionAnswering
from minibert.training import sharding
from minibert.training.batch import Batch, model_inputs
from minibert.training.loop import loss_and_accuracy

VOCAB, BATCH, SEQ, SLOTS = 50, 2, 8, 3
TINY = dict(vocab_size=VOCAB, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
            max_position_embeddings=32)


def sparse_batch(**extra) -> Batch:
    rng = np.random.default_rng(0)
    return Batch(input_ids=rng.integers(5, VOCAB, (BATCH, SEQ), dtype=np.int32),
                 attention_mask=np.ones((BATCH, SEQ), np.int32), token_type_ids=np.zeros((BATCH, SEQ), np.int32),
                 labels=rng.integers(5, VOCAB, (BATCH, SLOTS), dtype=np.int32),
                 masked_positions=np.tile(np.arange(SLOTS, dtype=np.int32), (BATCH, 1)), **extra)


def test_batch_is_a_pytree_without_its_unset_fields():
    batch = sparse_batch()
    leaves = jax.tree.leaves(batch)
    assert len(leaves) == 5                        # input_ids, attention_mask, token_type_ids, labels, positions
    put = jax.device_put(batch, sharding.batch_sharding(sharding.data_mesh()))
    assert isinstance(put, Batch) and put.segment_ids is None and isinstance(put.input_ids, jax.Array)
    doubled = jax.jit(lambda b: b.replace(input_ids=b.input_ids * 2))(put)
    np.testing.assert_array_equal(doubled.input_ids, batch.input_ids * 2)
    assert doubled.next_sentence_label is None
    np.testing.assert_array_equal(doubled.labels, batch.labels)


def test_batch_reads_like_a_dict_of_its_set_fields():
    batch = sparse_batch()
    assert batch.keys() == ("input_ids", "attention_mask", "token_type_ids", "labels", "masked_positions")
    assert "labels" in batch and "segment_ids" not in batch
    assert batch["labels"] is batch.labels and batch.get("segment_ids") is None
    with pytest.raises(KeyError):
        batch["segment_ids"]
    assert dict(batch.items()).keys() == set(batch.keys())


def test_from_dict_rejects_unknown_keys():
    d = {"input_ids": np.zeros((1, 4), np.int32), "attention_mask": np.ones((1, 4), np.int32)}
    assert Batch.from_dict(d).token_type_ids is None
    with pytest.raises(ValueError, match="start_positions, teacher_logits"):
        Batch.from_dict({**d, "teacher_logits": 0, "start_positions": 0})


def test_model_inputs_passes_the_declared_fields():
    nsp = sparse_batch(next_sentence_label=np.zeros(BATCH, np.int32))
    pretraining = BertForPreTraining(BertConfig(**TINY))
    assert set(model_inputs(pretraining, nsp)) == {"input_ids", "attention_mask", "token_type_ids", "labels",
                                                  "masked_positions", "next_sentence_label"}
    masked_lm = BertForMaskedLM(BertConfig(**TINY))
    assert "next_sentence_label" not in BertForMaskedLM.batch_fields()
    assert set(model_inputs(masked_lm, nsp)) == {"input_ids", "attention_mask", "token_type_ids", "labels",
                                                "masked_positions"}
    assert set(model_inputs(BertModel(BertConfig(**TINY)), nsp)) == {"input_ids", "attention_mask", "token_type_ids"}
    # a fine-tuning dict: the model's fields, not the teacher's outputs
    qa = BertForQuestionAnswering(BertConfig(**TINY))
    d = {**{k: nsp[k] for k in ("input_ids", "attention_mask", "token_type_ids")},
         "start_positions": np.zeros(BATCH, np.int32), "end_positions": np.ones(BATCH, np.int32),
         "teacher_start_logits": np.zeros((BATCH, SEQ), np.float32)}
    assert set(model_inputs(qa, d)) == {"input_ids", "attention_mask", "token_type_ids", "start_positions",
                                        "end_positions"}
    assert qa(**model_inputs(qa, d)).loss is not None


def test_model_inputs_refuses_what_a_model_would_silently_ignore():
    model = BertForPreTraining(BertConfig(**TINY))
    packed = sparse_batch(segment_ids=np.ones((BATCH, SEQ), np.int32))
    with pytest.raises(ValueError, match="segment_ids.*BertForPreTraining"):
        model_inputs(model, packed)
    with pytest.raises(ValueError, match="position_ids.*BertForPreTraining"):
        model_inputs(model, {"input_ids": packed.input_ids, "position_ids": packed.input_ids})
    electra = ElectraPretrainer.from_config(ElectraConfig(**TINY, embedding_size=16), 0.5)
    with pytest.raises(ValueError, match="masked_positions"):     # sparse labels to a dense head
        model_inputs(electra, sparse_batch())


def test_every_model_declares_its_inputs():
    for name, model_class in auto.all_model_classes().items():
        fields = model_class.batch_fields()
        assert fields[:2] == ("input_ids", "attention_mask"), name
        assert "output_hidden_states" not in fields and "key" not in fields, name
        assert model_class.accepts_masked_positions() == ("masked_positions" in fields), name
    assert ElectraPretrainer.batch_fields() == ("input_ids", "attention_mask", "token_type_ids", "labels")


def test_loss_and_accuracy_takes_a_batch_under_jit():
    model = BertForPreTraining(BertConfig(**TINY))
    model.eval()                                   # no dropout: the two calls must agree
    batch = sparse_batch(next_sentence_label=np.zeros(BATCH, np.int32))
    loss, accuracy = nnx.jit(loss_and_accuracy)(model, batch, jax.random.key(0))
    reference = model(**batch).loss                # a Batch unpacks like a dict of its set fields
    np.testing.assert_allclose(loss, reference, rtol=1e-5)
    assert 0.0 <= float(accuracy) <= 1.0

    electra = ElectraPretrainer.from_config(ElectraConfig(**TINY, embedding_size=16), 0.5)
    dense = Batch(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                  labels=jnp.where(np.arange(SEQ) < SLOTS, batch.input_ids, -100))
    loss, _ = nnx.jit(loss_and_accuracy)(electra, dense, jax.random.key(0))
    assert np.isfinite(float(loss))
