"""minibert/config.py: the fields every family's config shares, and `update_from_string` (transformers' syntax)."""

import pytest

from minibert.config import BertConfig
from minibert.models.modernbert import ModernBertConfig


def test_update_from_string_reads_each_value_as_its_fields_type():
    config = BertConfig()
    config.update_from_string("num_hidden_layers=4, hidden_dropout_prob=0.2,hidden_act=gelu_new,"
                              "tie_word_embeddings=false,classifier_dropout=0.3")
    assert (config.num_hidden_layers, config.hidden_dropout_prob, config.hidden_act) == (4, 0.2, "gelu_new")
    assert config.tie_word_embeddings is False and config.classifier_dropout == 0.3
    config.update_from_string("classifier_dropout=none")
    assert config.classifier_dropout is None
    config.validate()


def test_update_from_string_matches_transformers():
    transformers = pytest.importorskip("transformers")
    overrides = "num_hidden_layers=3,local_attention=64,mlp_bias=false,classifier_pooling=mean,norm_eps=1e-6"
    ours, theirs = ModernBertConfig(), transformers.ModernBertConfig()
    ours.update_from_string(overrides)
    theirs.update_from_string(overrides)
    for name in ("num_hidden_layers", "local_attention", "mlp_bias", "classifier_pooling", "norm_eps"):
        assert getattr(ours, name) == getattr(theirs, name), name


@pytest.mark.parametrize("overrides, message", [
    ("num_layers=4", "BertConfig has no field 'num_layers'; its fields: architectures, "),
    ("num_hidden_layers=four", "num_hidden_layers='four': num_hidden_layers must be int"),
    ("tie_word_embeddings=yes", "tie_word_embeddings must be bool"),
    ("num_hidden_layers", "'num_hidden_layers' is not name=value"),
    ("vocab_size=none", "vocab_size must be int"),
])
def test_update_from_string_names_the_bad_item(overrides, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        BertConfig().update_from_string(overrides)
