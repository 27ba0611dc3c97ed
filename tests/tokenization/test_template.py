"""Post-processing templates (template.py) against `tokenizers`' processors: BERT's, RoBERTa's,
TemplateProcessing with type ids, ByteLevel offset trimming, Sequence; with and without special
tokens, truncation with overflowing windows; and their tokenizer.json sections both ways."""

import json

import pytest

from minibert.tokenization import template
from minibert.tokenization.base import Tokenizer
from minibert.tokenization.encoding import Encoding
from minibert.tokenization.pretokenize import WhitespaceSplit
from minibert.tokenization.wordpiece import WordPiece

WORDS = ["[UNK]", "[CLS]", "[SEP]", "<s>", "</s>", "the", "cat", "sat", "on", "a", "mat", "and",
         "dog", "ran", "##s"]
VOCAB = {t: i for i, t in enumerate(WORDS)}
TEXTS = ["the cat sat", "a dog ran on the mat", "", "cats and dogs", "the the the the the the"]


def processors():
    from tokenizers import processors as rust

    template_kwargs = dict(single="[CLS]:1 $A:2 [SEP]", pair="[CLS] $A:0 [SEP]:3 $B:4 [SEP]:5",
                           special_tokens=[("[CLS]", 1), ("[SEP]", 2)])
    return {
        "bert": (template.BertProcessing(("[SEP]", 2), ("[CLS]", 1)),
                 rust.BertProcessing(("[SEP]", 2), ("[CLS]", 1))),
        "roberta": (template.RobertaProcessing(("</s>", 4), ("<s>", 3)),
                    rust.RobertaProcessing(("</s>", 4), ("<s>", 3))),
        "template": (template.TemplateProcessing(
            "[CLS]:1 $A:2 [SEP]", "[CLS] $A:0 [SEP]:3 $B:4 [SEP]:5", {"[CLS]": [1], "[SEP]": [2]}),
            rust.TemplateProcessing(**template_kwargs)),
        "sequence": (template.Sequence([template.ByteLevel(trim_offsets=False),
                                        template.BertProcessing(("[SEP]", 2), ("[CLS]", 1))]),
                     rust.Sequence([rust.ByteLevel(trim_offsets=False),
                                    rust.BertProcessing(("[SEP]", 2), ("[CLS]", 1))])),
        "none": (None, None),
    }


def pair_of(name):
    from tokenizers import Tokenizer as RustTokenizer, models, pre_tokenizers

    ours_processor, rust_processor = processors()[name]
    ours = Tokenizer(WordPiece(VOCAB), pre_tokenizer=WhitespaceSplit(),
                     post_processor=ours_processor)
    rust = RustTokenizer(models.WordPiece(VOCAB, unk_token="[UNK]"))
    rust.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    if rust_processor is not None:
        rust.post_processor = rust_processor
    return ours, rust


def fields(e):
    return (e.ids, e.type_ids, e.tokens, e.offsets, e.special_tokens_mask, e.attention_mask,
            e.word_ids, e.sequence_ids)


@pytest.mark.parametrize("name", ["bert", "roberta", "template", "sequence", "none"])
def test_like_tokenizers(name):
    ours, rust = pair_of(name)
    for a in TEXTS:
        for b in [None, *TEXTS]:
            for special in (True, False):
                got = ours.encode(a, b, add_special_tokens=special)
                expected = rust.encode(a, b, add_special_tokens=special)
                assert fields(got) == fields(expected), (name, a, b, special)
    n_special = ours.num_special_tokens_to_add(True)
    assert n_special == rust.post_processor.num_special_tokens_to_add(True) \
        if rust.post_processor else n_special == 0


@pytest.mark.parametrize("name", ["bert", "roberta", "template", "none"])
def test_overflowing_windows_like_tokenizers(name):
    """Both texts cut into windows with a stride: the kept pair, then the combinations in
    tokenizers' order (Encoding::merge_with)."""
    ours, rust = pair_of(name)
    for strategy in ("longest_first", "only_first", "only_second"):
        for max_length, stride in ((9, 1), (10, 2), (12, 0)):
            rust.enable_truncation(max_length, stride=stride, strategy=strategy)
            for a, b in [(TEXTS[1], TEXTS[4]), (TEXTS[4] + " cat", TEXTS[0]), (TEXTS[1], None)]:
                try:
                    expected = rust.encode(a, b)
                except BaseException:  # its error, or its panic on a stride too long for the room
                    with pytest.raises(ValueError):
                        ours.encode(a, b, max_length=max_length, truncation=strategy, stride=stride)
                    continue
                got = ours.encode(a, b, max_length=max_length, truncation=strategy, stride=stride)
                assert [fields(e)[:5] for e in [got, *got.overflowing]] == \
                    [fields(e)[:5] for e in [expected, *expected.overflowing]], \
                    (strategy, max_length, stride, a, b)


def test_trim_offsets_like_byte_level_and_roberta():
    """One trimming rule (byte_level.process_offsets) for both processors that trim, against
    both of tokenizers', on tokens that carry spaces of every kind."""
    from tokenizers import Tokenizer as RustTokenizer, models, pre_tokenizers, processors, trainers

    from minibert.tokenization.byte_level import process_offsets

    lines = ["Hello   world,  how are you?", " leading and trailing  ", "tabs\tand\nnewlines here",
             "plain", "no\u3000break\u00a0spaces\u2009 \u2029x"] * 20
    rust = RustTokenizer(models.BPE())
    rust.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True, use_regex=False)
    rust.train_from_iterator(lines, trainers.BpeTrainer(vocab_size=300, show_progress=False))
    rust.add_special_tokens(["<s>", "</s>"])
    sep, cls = ("</s>", rust.token_to_id("</s>")), ("<s>", rust.token_to_id("<s>"))
    for add_prefix_space in (True, False):
        rust.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=add_prefix_space,
                                                      use_regex=False)
        trimming = [processors.ByteLevel(trim_offsets=True, add_prefix_space=add_prefix_space),
                    processors.RobertaProcessing(sep, cls, trim_offsets=True,
                                                 add_prefix_space=add_prefix_space)]
        for text in lines[:5]:
            rust.post_processor = processors.ByteLevel(trim_offsets=False)
            untrimmed = rust.encode(text)
            expected = process_offsets(untrimmed.tokens, untrimmed.offsets, add_prefix_space)
            for processor in trimming:
                rust.post_processor = processor
                trimmed = rust.encode(text, add_special_tokens=False)
                assert expected == trimmed.offsets, (text, processor)
                ours = template.from_json(json.loads(processor.__getstate__()))
                sequence = Encoding.of_sequence(untrimmed.ids, untrimmed.tokens,
                                                untrimmed.offsets, untrimmed.word_ids)
                assert ours.process([sequence], add_special_tokens=False)[0].offsets == expected


def test_json_sections_both_ways():
    for name, (ours, rust) in processors().items():
        if ours is None:
            continue
        section = json.loads(rust.__getstate__())
        assert ours.to_json() == section, name
        assert template.from_json(section).to_json() == section, name


def test_bad_templates_name_the_problem():
    with pytest.raises(ValueError, match=r"'\[X\]' has no id"):
        template.TemplateProcessing("[X] $A", None, {})
    with pytest.raises(ValueError, match=r"post_processor.type: unknown post-processor 'Foo'"):
        template.from_json({"type": "Foo"})
    with pytest.raises(ValueError, match="expected \\$A or \\$B"):
        template.TemplateProcessing("$C", None, {})
    no_pair = template.TemplateProcessing("[CLS] $A", None, {"[CLS]": [1]})
    ours = Tokenizer(WordPiece(VOCAB), pre_tokenizer=WhitespaceSplit(), post_processor=no_pair)
    with pytest.raises(ValueError, match="no template for pairs"):
        ours.encode("the", "cat")
