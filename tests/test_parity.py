"""`minibert parity`: the per-stage table, exit code 0 at parity and 1 when a weight is off."""

import minibert.parity
from minibert.checkpoints.hf import from_pretrained
from minibert.cli import main
from tests.conftest import save_reference


def test_parity_command_passes_then_fails_on_a_perturbed_weight(tmp_path, capsys, monkeypatch):
    save_reference("BertForPreTraining", "BertConfig", tmp_path, vocab_size=40, hidden_size=16, num_hidden_layers=2,
                   num_attention_heads=2, intermediate_size=20, type_vocab_size=3)
    assert main(["parity", str(tmp_path)]) == 0
    table = capsys.readouterr().out
    for stage in ("embeddings", "layer 0", "layer 1", "logits", "seq_relationship_logits", "PASS"):
        assert stage in table

    def perturbed(path):
        model = from_pretrained(path)
        weight = model.bert.encoder.layer[1].output.dense.weight
        weight.set_value(weight[...] * 1.01)
        return model

    monkeypatch.setattr(minibert.parity, "from_pretrained", perturbed)
    assert main(["parity", str(tmp_path)]) == 1
    table = capsys.readouterr().out
    assert "FAIL" in table and [l for l in table.splitlines() if l.startswith("layer 1")][0].endswith("NO")
    assert [l for l in table.splitlines() if l.startswith("layer 0")][0].endswith("yes")
