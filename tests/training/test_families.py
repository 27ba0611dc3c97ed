"""Every family pretrains from the command line's code path, with its default objective (and Flex composed three ways,
with MLM + NSP, MLM + SOP and RTD), and its loss falls."""

import pytest

from minibert import presets
from minibert.training.loop import TrainConfig
from minibert.training.pretrain import PretrainConfig, pretrain


@pytest.mark.slow
@pytest.mark.parametrize("family, objective, overrides", [*((family, None, None) for family in presets.FAMILIES),
                                                          ("flex", "mlm+nsp", "positions=rope,norm=pre,ffn=geglu"),
                                                          ("flex", "mlm+sop",
                                                           "intra_bottleneck_size=32,num_feedforward_networks=3"),
                                                          ("flex", "rtd", "positions=alibi,bias=false")])
def test_each_family_trains_with_falling_loss(family, objective, overrides, corpus_and_vocab, tmp_path):
    corpus, vocab = corpus_and_vocab
    train = TrainConfig(steps=40, learning_rate=2e-3, warmup_steps=4, log_every=5, eval_every=1000, save_every=1000,
                        output_dir=str(tmp_path))
    model, _, history = pretrain(PretrainConfig(family=family, size="tiny", objective=objective,
                                                config_overrides=overrides, corpus=[str(corpus)], vocab=str(vocab),
                                                seq_len=32, batch_size=8, train=train))
    first, last = history[0]["loss"], history[-1]["loss"]
    assert last < first - 0.5, f"{family}: loss {first:.3f} → {last:.3f}"
    assert (tmp_path / "config.json").is_file() and (tmp_path / "model.safetensors").is_file()
