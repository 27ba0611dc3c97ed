"""`minibert parity`: the per-stage table (absolute and relative differences), exit code 0 at parity and 1 when a
weight is off, float32 noise of a real checkpoint at 512 tokens within the default tolerance, no progress bars."""


import pytest

import minibert.parity
from minibert.checkpoints.hf import from_pretrained
from minibert.cli import main
from tests.conftest import save_reference


def scale_weight(path, factor=1.01, index=None):
    """minibert's loader, with one output dense matrix of layer 1 (of the base model) scaled by `factor` — all of
    it, or its entry `index`."""
    model = from_pretrained(path)
    encoder = getattr(model, "bert", model).encoder
    weight = encoder.layer[1].output.dense.weight
    weight.set_value(weight[...] * factor if index is None else weight[...].at[index].multiply(factor))
    return model


def stage_line(table: str, stage: str) -> str:
    return next(line for line in table.splitlines() if line.startswith(stage + " "))


def test_parity_command_passes_then_fails_on_a_perturbed_weight(tmp_path, capsys, monkeypatch):
    save_reference("BertForPreTraining", "BertConfig", tmp_path, vocab_size=40, hidden_size=16, num_hidden_layers=2,
                   num_attention_heads=2, intermediate_size=20, type_vocab_size=3)
    assert main(["parity", str(tmp_path)]) == 0
    table = capsys.readouterr().out
    for stage in ("embeddings", "layer 0", "layer 1", "logits", "seq_relationship_logits", "PASS"):
        assert stage in table
    assert "max |diff|" in table and "max |ref|" in table and "relative" in table

    monkeypatch.setattr(minibert.parity, "from_pretrained", scale_weight)
    assert main(["parity", str(tmp_path)]) == 1
    table = capsys.readouterr().out
    assert "FAIL: largest relative difference" in table and stage_line(table, "layer 1").endswith("NO")
    assert stage_line(table, "layer 0").endswith("yes")


def test_rows_report_absolute_and_relative_differences():
    row = minibert.parity.Row("layer 0", (1, 2, 3), max_abs_diff=2e-5, reference_scale=10.0)
    assert row.relative_diff == pytest.approx(2e-6) and row.passes() and not row.passes(1e-6)
    assert minibert.parity.Row("x", (1,), 0.0, 0.0).relative_diff == 0.0
    assert not minibert.parity.Row("x", (1,), 1e-9, 0.0).passes()      # any difference on an all-zero reference


def test_the_table_has_no_progress_bars(tmp_path, capfd):
    """transformers 5 draws a "Loading weights" bar on stderr while loading: `compare` switches it off."""
    save_reference("BertModel", "BertConfig", tmp_path, vocab_size=40, hidden_size=16, num_hidden_layers=1,
                   num_attention_heads=2, intermediate_size=20)
    capfd.readouterr()
    assert main(["parity", str(tmp_path)]) == 0
    out, err = capfd.readouterr()
    assert "Loading weights" not in out + err and "%|" not in out + err and err == ""
    assert out.splitlines()[0].startswith("stage") and out.splitlines()[-1].startswith("PASS")
    from transformers.utils import logging

    assert logging.is_progress_bar_enabled()                          # restored afterwards


@pytest.mark.slow
def test_a_real_checkpoint_at_512_tokens_passes_and_one_scaled_matrix_fails(minilm, capsys, monkeypatch):
    """float32 accumulation noise (~1e-5 absolute on hidden states of ~10) passes the default relative tolerance;
    one weight matrix scaled by 1.01 fails from its layer on."""
    assert main(["parity", str(minilm), "--batch-size", "2", "--seq-len", "512"]) == 0
    table = capsys.readouterr().out
    assert "(2, 512, 384)" in table and "PASS" in table

    monkeypatch.setattr(minibert.parity, "from_pretrained", scale_weight)
    assert main(["parity", str(minilm), "--batch-size", "2", "--seq-len", "512"]) == 1
    table = capsys.readouterr().out
    assert stage_line(table, "layer 0").endswith("yes") and stage_line(table, "layer 1").endswith("NO")
