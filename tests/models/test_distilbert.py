"""models/distilbert.py `from_teacher`: the student is a BERT teacher's every other layer (Sanh et al. 2019, §3)."""

import numpy as np
import pytest
from flax import nnx

from minibert import BertConfig
from minibert.checkpoints.hf import model_state_dict
from minibert.models.bert import BertForMaskedLM, BertModel
from minibert.models.distilbert import from_teacher

SMALL = dict(vocab_size=50, hidden_size=16, num_attention_heads=2, intermediate_size=24, max_position_embeddings=32)


def test_a_one_layer_teacher_and_its_student_compute_the_same_function():
    """With token type 0's embedding at zero (DistilBERT has no token types), student == teacher."""
    teacher = BertForMaskedLM(BertConfig(num_hidden_layers=1, **SMALL), rngs=nnx.Rngs(1))
    teacher.bert.embeddings.token_type_embeddings.weight[...] = 0.0
    teacher.eval()
    student = from_teacher(teacher)
    student.eval()
    ids = np.random.default_rng(0).integers(1, 50, (2, 9))
    mask = np.ones((2, 9), np.int32)
    mask[1, 6:] = 0
    np.testing.assert_allclose(np.asarray(student(ids, mask).logits)[mask > 0],
                               np.asarray(teacher(ids, mask).logits)[mask > 0], atol=1e-5)


def test_student_layer_i_is_teacher_layer_2i():
    teacher = BertForMaskedLM(BertConfig(num_hidden_layers=5, **SMALL), rngs=nnx.Rngs(2))
    student = from_teacher(teacher)
    assert student.config.n_layers == 3
    ours, theirs = model_state_dict(student), model_state_dict(teacher)
    for i in range(3):
        np.testing.assert_array_equal(ours[f"distilbert.transformer.layer.{i}.ffn.lin1.weight"][...],
                                      theirs[f"bert.encoder.layer.{2 * i}.intermediate.dense.weight"][...])
    np.testing.assert_array_equal(ours["vocab_projector.bias"][...], theirs["cls.predictions.bias"][...])


def test_only_a_bert_masked_lm_can_teach():
    with pytest.raises(ValueError, match="starts from a BERT masked LM"):
        from_teacher(BertModel(BertConfig(num_hidden_layers=2, **SMALL)))
