"""Issue 16, item 7: ModernBERT end to end. A ModernBERT-style tokenizer (byte-level BPE, NFC, `[CLS] $A [SEP]`,
`[MASK]` that eats the space before it) built with `tokenizers`, a random-init `transformers` ModernBERT saved
beside it, as `save_pretrained` writes them (tokenizer.json + tokenizer_config.json, no vocab.txt):
`minibert fill-mask` gives the `transformers` fill-mask pipeline's top 5 tokens and scores."""

import pytest

from minibert.cli import run
from minibert.tasks.pipelines import fill_mask
from minibert.tokenization import AutoTokenizer

SHAKESPEARE = "../shared/data/tinyshakespeare/input.txt"
TEXT = "The capital of France is [MASK]."


@pytest.fixture(scope="module")
def modernbert_dir(tmp_path_factory):
    import torch
    import transformers
    from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

    path = tmp_path_factory.mktemp("modernbert")
    with open(SHAKESPEARE, encoding="utf-8") as f:
        lines = f.read().splitlines()[:4000]
    specials = ["[UNK]", "[CLS]", "[SEP]", "[PAD]", "[MASK]"]
    rust = Tokenizer(models.BPE(unk_token=None))
    rust.normalizer = normalizers.NFC()
    rust.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True)
    rust.decoder = decoders.ByteLevel()
    rust.train_from_iterator(lines, trainers.BpeTrainer(vocab_size=700, special_tokens=specials,
                                                        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    rust.add_special_tokens([AddedToken("[MASK]", lstrip=True, special=True)])
    cls, sep = rust.token_to_id("[CLS]"), rust.token_to_id("[SEP]")
    rust.post_processor = processors.TemplateProcessing(
        single="[CLS]:0 $A:0 [SEP]:0", pair="[CLS]:0 $A:0 [SEP]:0 $B:0 [SEP]:0",
        special_tokens=[("[CLS]", cls), ("[SEP]", sep)])
    fast = transformers.PreTrainedTokenizerFast(tokenizer_object=rust, unk_token="[UNK]", cls_token="[CLS]",
                                                sep_token="[SEP]", pad_token="[PAD]", mask_token="[MASK]",
                                                model_max_length=8192)
    fast.save_pretrained(path)
    torch.manual_seed(0)
    config = transformers.ModernBertConfig(
        vocab_size=len(fast), hidden_size=48, intermediate_size=72, num_hidden_layers=3, num_attention_heads=4,
        global_attn_every_n_layers=2, local_attention=8, max_position_embeddings=128,
        pad_token_id=fast.pad_token_id, cls_token_id=cls, sep_token_id=sep, bos_token_id=cls, eos_token_id=sep)
    transformers.ModernBertForMaskedLM(config).eval().save_pretrained(path)
    return path


def test_fill_mask_matches_the_transformers_pipeline(modernbert_dir, capsys):
    import transformers

    reference = transformers.pipeline("fill-mask", model=str(modernbert_dir), top_k=5)(TEXT)
    assert not (modernbert_dir / "vocab.txt").exists()
    from minibert.checkpoints.hf import from_pretrained
    [ours] = fill_mask(from_pretrained(modernbert_dir), AutoTokenizer.from_pretrained(modernbert_dir), TEXT)
    assert [c["token"] for c in ours] == [r["token"] for r in reference]
    assert [c["token_str"] for c in ours] == [r["token_str"] for r in reference]
    assert [c["sequence"] for c in ours] == [r["sequence"] for r in reference]
    for c, r in zip(ours, reference):
        assert c["score"] == pytest.approx(r["score"], abs=1e-5)
    capsys.readouterr()
    assert run(["fill-mask", "--model", str(modernbert_dir), TEXT]) == 0
    printed = capsys.readouterr().out
    assert all(r["token_str"].strip() in printed for r in reference)
