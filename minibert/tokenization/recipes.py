"""New vocabularies, laid out as the family that made each algorithm known: BERT's WordPiece, RoBERTa's byte-level
BPE, ALBERT's Unigram. `AutoTokenizer.train(texts, vocab_size, model=...)` and `minibert prepare --tokenizer` come
here; the algorithms are in trainer.py, bpe_trainer.py and unigram_trainer.py."""

from minibert.tokenization import normalize, template
from minibert.tokenization.base import AddedToken, Tokenizer
from minibert.tokenization.bpe import BPE
from minibert.tokenization.bpe_trainer import BpeTrainer
from minibert.tokenization.byte_level import ByteLevel, ByteLevelDecoder
from minibert.tokenization.metaspace import Metaspace, MetaspaceDecoder
from minibert.tokenization.tokenizer import WordPieceTokenizer
from minibert.tokenization.unigram_trainer import UnigramTrainer

TOKENIZERS = ("wordpiece", "bpe", "unigram")   # the algorithms `train` learns a vocabulary with


def train(texts, vocab_size: int, model: str = "wordpiece", lowercase: bool = True, **options) -> Tokenizer:
    """A new tokenizer of algorithm `model` (one of TOKENIZERS) with a vocabulary of about `vocab_size` learned from
    `texts` (an iterable of str, or of lists of str), laid out as the family that made the algorithm known:

    - "wordpiece": BERT's (Devlin et al. 2019 §3; `WordPieceTokenizer.train`, which takes the trainer `options`):
      [PAD] [UNK] [CLS] [SEP] [MASK] = 0–4, `[CLS] A [SEP] B [SEP]`; `lowercase`: BERT-uncased's normaliser.
    - "bpe": RoBERTa's byte-level BPE (Liu et al. 2019 §4.4; GPT-2's 256 bytes as the base alphabet, Radford et
      al. 2019 §2.2; merges learned by `BpeTrainer`, Sennrich et al. 2016, of pairs seen at least twice):
      <s> <pad> </s> <unk> <mask> = 0–4, no prefix space (roberta-base's tokenizer.json), `<s> A </s></s> B </s>`,
      no token types; <mask> takes the space before it (lstrip), as RoBERTa's does.
    - "unigram": ALBERT's SentencePiece Unigram (Lan et al. 2020 §4.1; Kudo 2018; `UnigramTrainer`): words
      marked by the Metaspace "▁", [PAD] [UNK] [CLS] [SEP] [MASK] = 0–4, `[CLS] A [SEP] B [SEP]`, [MASK] lstrip.

    For "bpe" and "unigram", `lowercase` adds the normaliser NFD → strip accents → lowercase (BERT-uncased's rule:
    `--cased` keeps case and accents for every algorithm). The vocabulary is at least the special tokens and the
    alphabet (for "bpe", the 256 bytes). Raises ValueError for an unknown model, or a Unigram `vocab_size` too
    small for the characters of the text."""
    if model not in TOKENIZERS:
        raise ValueError(f"unknown tokenizer model {model!r}; choose from {', '.join(TOKENIZERS)}")
    if model == "wordpiece":
        return WordPieceTokenizer.train(texts, vocab_size, lowercase=lowercase, **options)
    if options:
        raise TypeError(f"the {model} recipe takes no options {sorted(options)}")
    normalizer = normalize.Sequence([normalize.UnicodeNormalizer("NFD"), normalize.StripAccents(),
                                     normalize.Lowercase()]) if lowercase else None
    return (_train_bpe if model == "bpe" else _train_unigram)(texts, vocab_size, normalizer)


def _train_bpe(texts, vocab_size: int, normalizer) -> Tokenizer:
    pre_tokenizer = ByteLevel(add_prefix_space=False, trim_offsets=True)
    trainer = BpeTrainer(vocab_size, min_frequency=2, special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"],
                         initial_alphabet=ByteLevel.alphabet())
    trainer.feed(texts, lambda text: pre_tokenizer(normalizer(text)[0] if normalizer else text))
    vocab, merges = trainer.train()
    processor = template.RobertaProcessing(("</s>", vocab["</s>"]), ("<s>", vocab["<s>"]), trim_offsets=True,
                                           add_prefix_space=False)
    return Tokenizer(BPE(vocab, merges), normalizer=normalizer, pre_tokenizer=pre_tokenizer,
                     post_processor=processor, decoder=ByteLevelDecoder(add_prefix_space=False),
                     model_input_names=["input_ids", "attention_mask"], bos_token="<s>", cls_token="<s>",
                     pad_token="<pad>", eos_token="</s>", sep_token="</s>", unk_token="<unk>",
                     mask_token=AddedToken("<mask>", lstrip=True, special=True))


def _train_unigram(texts, vocab_size: int, normalizer) -> Tokenizer:
    pre_tokenizer = Metaspace()
    trainer = UnigramTrainer(vocab_size, special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"],
                             unk_token="[UNK]")
    model = trainer.train(texts, pre_tokenizer=pre_tokenizer, normalizer=normalizer)
    processor = template.TemplateProcessing("[CLS] $A [SEP]", "[CLS] $A [SEP] $B:1 [SEP]:1",
                                            {token: [model.vocab[token]] for token in ("[CLS]", "[SEP]")})
    return Tokenizer(model, normalizer=normalizer, pre_tokenizer=pre_tokenizer, post_processor=processor,
                     decoder=MetaspaceDecoder(), pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]",
                     sep_token="[SEP]", mask_token=AddedToken("[MASK]", lstrip=True, special=True))
