"""BERT's WordPiece tokenizer end to end (Devlin et al. 2019, §3 "Input/Output Representations").

    text -> normalize -> pre-tokenize -> WordPiece -> [CLS] A [SEP] (B [SEP]) -> truncate -> pad

Stages 1-3 live in normalize.py, pretokenize.py and wordpiece.py, post-processing in
template.py and the API in base.py; this module is the preset that puts BERT's stages
together, and its files: `vocab.txt` (+ tokenizer_config.json, as `BertTokenizerFast` reads
them) and tokenizer.json (as transformers 5 writes them).

Special tokens typed in the text ("fill the [MASK]") are kept whole, as in the reference.
"""

import dataclasses
import json
import os

from minibert.checkpoints.hub import resolve
from minibert.tokenization import files, wordpiece
from minibert.tokenization.base import AddedToken, Tokenizer, no_cyclic_gc, truncated_lengths
from minibert.tokenization.encoding import Encoding
from minibert.tokenization.normalize import BertNormalizer
from minibert.tokenization.pretokenize import BertPreTokenizer, WhitespaceSplit
from minibert.tokenization.template import BertProcessing

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
ROLES = ("pad_token", "unk_token", "cls_token", "sep_token", "mask_token")

__all__ = ["Encoding", "SPECIAL_TOKENS", "WordPieceTokenizer", "no_cyclic_gc", "read_vocab",
           "truncated_lengths"]


def read_vocab(path) -> dict[str, int]:
    """vocab.txt: one token per line, the id is the line number."""
    vocab = {}
    with open(path, "rb") as f:
        for number, line in enumerate(f):
            try:
                vocab[line.decode("utf-8").rstrip()] = number
            except UnicodeDecodeError as e:
                raise ValueError(f"{path}, line {number + 1}: not UTF-8 ({e})") from None
    return vocab


class WordPieceTokenizer(Tokenizer):
    """BERT's tokenizer, from scratch; identical output to Hugging Face's BertTokenizerFast.

    Special tokens the vocabulary lacks are absent (`pad_token` None, ...): only what needs
    one fails, naming it. `do_basic_tokenize=False` skips BERT's normalizer and punctuation
    split (whitespace only, as transformers' BertTokenizer). `never_split` tokens are kept
    whole. `backend="tokenizers"` runs stages 1-3 in the Rust `tokenizers` package instead
    (same vocab, same output, parallel batches); post-processing is ours either way.
    """

    def __init__(self, vocab: dict[str, int], *, lowercase=True, strip_accents=None,
                 clean_text=True, handle_chinese_chars=True, model_max_length=512,
                 backend="minibert", do_basic_tokenize=True, never_split=(),
                 unk_token="[UNK]", sep_token="[SEP]", pad_token="[PAD]", cls_token="[CLS]",
                 mask_token="[MASK]", continuing_subword_prefix=wordpiece.PREFIX, **kwargs):
        roles = dict(zip(ROLES, (pad_token, unk_token, cls_token, sep_token, mask_token)))
        roles = {role: str(t) if t is not None and str(t) in vocab else None
                 for role, t in roles.items()}
        cls, sep = roles["cls_token"], roles["sep_token"]
        processor = BertProcessing((sep, vocab[sep]), (cls, vocab[cls])) if cls and sep \
            else None
        normalizer, pre_tokenizer = (BertNormalizer(clean_text, handle_chinese_chars,
                                                    strip_accents, lowercase),
                                     BertPreTokenizer()) if do_basic_tokenize \
            else (None, WhitespaceSplit())
        prefix = continuing_subword_prefix
        super().__init__(wordpiece.WordPiece(vocab, unk_token=str(unk_token), prefix=prefix),
                         normalizer=normalizer, pre_tokenizer=pre_tokenizer,
                         post_processor=processor, decoder=wordpiece.WordPieceDecoder(prefix),
                         added_tokens=[AddedToken(t, normalized=False) for t in never_split],
                         model_max_length=model_max_length,
                         backend=backend, **roles, **kwargs)
        self.normalizer_options = dict(lowercase=lowercase, strip_accents=strip_accents,
                                       clean_text=clean_text,
                                       handle_chinese_chars=handle_chinese_chars,
                                       do_basic_tokenize=do_basic_tokenize)

    def add_tokens(self, tokens, special_tokens=False) -> int:
        """As transformers' BertTokenizer: a lower-casing tokenizer lower-cases the tokens it adds
        (those not special and matched in the normalized text)."""
        if isinstance(tokens, (str, AddedToken)):
            tokens = [tokens]
        lowercase = getattr(self.normalizer, "lowercase", False) and not special_tokens

        def lowered(token):
            if isinstance(token, str) and token not in self.added_tokens:
                token = AddedToken(token)
            if isinstance(token, AddedToken) and token.normalized and not token.special:
                token = dataclasses.replace(token, content=token.content.lower())
            return token
        return super().add_tokens([lowered(t) for t in tokens] if lowercase else tokens,
                                  special_tokens)

    def _process(self, parts, add_special_tokens):
        if add_special_tokens and self.post_processor is None:
            missing = [t for t, role in (("[CLS]", "cls_token"), ("[SEP]", "sep_token"))
                       if self._roles[role] is None]
            raise ValueError(f"adding special tokens needs {' and '.join(missing)}, which the "
                             "vocabulary lacks (pass add_special_tokens=False)")
        return super()._process(parts, add_special_tokens)

    # ---- construction, files -------------------------------------------------------------

    @classmethod
    def from_file(cls, vocab_file, **kwargs) -> "WordPieceTokenizer":
        return cls(read_vocab(vocab_file), **kwargs)

    @classmethod
    def from_pretrained(cls, directory, **kwargs) -> "WordPieceTokenizer":
        """Read a Hugging Face BERT tokenizer directory (vocab.txt + tokenizer_config.json,
        or tokenizer.json as transformers 5 saves it), or a Hub name's."""
        directory = resolve(directory)
        config_file = os.path.join(directory, "tokenizer_config.json")
        config = {}
        if os.path.exists(config_file):
            with open(config_file, encoding="utf-8") as f:
                config = json.load(f)
        options = {
            "lowercase": config.get("do_lower_case", True),
            "strip_accents": config.get("strip_accents"),
            "handle_chinese_chars": config.get("tokenize_chinese_chars", True),
            "clean_text": config.get("clean_text", True),
            "do_basic_tokenize": config.get("do_basic_tokenize", True),
            # Hugging Face writes 1e30 for "no limit".
            "model_max_length": min(config.get("model_max_length", 512), 1 << 31),
        } | {role: config[role] for role in ROLES if isinstance(config.get(role), str)}
        vocab_file = os.path.join(directory, "vocab.txt")
        json_file = os.path.join(directory, "tokenizer.json")
        if not os.path.exists(vocab_file) and os.path.exists(json_file):
            return cls.from_tokenizer_json(json_file, **(options | kwargs))
        return cls.from_file(vocab_file, **(options | kwargs))

    @classmethod
    def from_tokenizer_json(cls, path, **kwargs) -> "WordPieceTokenizer":
        """A BERT tokenizer.json: the WordPiece vocabulary, BertNormalizer options and added
        tokens of the file."""
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        model = data.get("model") or {}
        if model.get("type", "WordPiece") != "WordPiece":
            raise files.TokenizerFileError(f"{path}, model.type: {model.get('type')!r} is not a "
                                           "WordPiece model (use minibert.AutoTokenizer)")
        vocab = wordpiece.WordPiece.from_json(model, str(path)).vocab
        normalizer = data.get("normalizer") or {}
        options = {}
        if normalizer.get("type") == "BertNormalizer":
            options = {"lowercase": normalizer.get("lowercase", True),
                       "strip_accents": normalizer.get("strip_accents"),
                       "clean_text": normalizer.get("clean_text", True),
                       "handle_chinese_chars": normalizer.get("handle_chinese_chars", True)}
        tokenizer = cls(vocab, **(kwargs | options))
        added = files.from_dict(data, str(path)).added_tokens  # with their flags and ids
        tokenizer.add_tokens([(token, i) for i, token in added.values()])
        return tokenizer

    def save_pretrained(self, directory):
        """Write vocab.txt, tokenizer.json, tokenizer_config.json and special_tokens_map.json."""
        os.makedirs(directory, exist_ok=True)
        vocab = self.model.vocab
        if sorted(vocab.values()) != list(range(len(vocab))):
            raise ValueError("vocab.txt needs the ids 0..n-1, each once")
        with open(os.path.join(directory, "vocab.txt"), "w", encoding="utf-8") as f:
            f.writelines(token + "\n" for token, _ in sorted(vocab.items(), key=lambda x: x[1]))
        self.save(os.path.join(directory, "tokenizer.json"))
        special = self.special_tokens_map
        n = self.normalizer_options
        lowercase = n["lowercase"]
        config = {
            "tokenizer_class": "BertTokenizer",
            "do_lower_case": lowercase,
            "strip_accents": n["strip_accents"],
            "tokenize_chinese_chars": n["handle_chinese_chars"],
            "clean_text": n["clean_text"],  # ours: transformers always cleans
            "do_basic_tokenize": n["do_basic_tokenize"],
            "model_max_length": self.model_max_length,
        } | special
        for name, content in (("tokenizer_config.json", config),
                              ("special_tokens_map.json", special)):
            with open(os.path.join(directory, name), "w", encoding="utf-8") as f:
                json.dump(content, f, indent=2, ensure_ascii=False)

    @classmethod
    def train(cls, files_or_iterator, vocab_size=30522, *, lowercase=True, min_frequency=2,
              strip_accents=None, clean_text=True, handle_chinese_chars=True,
              limit_alphabet=1000, initial_alphabet=(), special_tokens=SPECIAL_TOKENS,
              continuing_subword_prefix=wordpiece.PREFIX, **kwargs) -> "WordPieceTokenizer":
        """Learn a vocabulary and return a tokenizer that uses it.

        The algorithm (trainer.py) is bottom-up merging of the most frequent pair, with "##"
        marking non-initial pieces, as Hugging Face's WordPieceTrainer does. `files_or_iterator`
        is a path, a list of paths, an iterator of texts (e.g. `iter(texts)`) or of batches
        of texts (lists), as `train_new_from_iterator` takes. The options are WordPieceTrainer's.
        """
        from minibert.tokenization.trainer import train_vocab

        normalizer = BertNormalizer(clean_text, handle_chinese_chars, strip_accents, lowercase)
        vocab = train_vocab(files_or_iterator, vocab_size, normalizer, min_frequency,
                            [str(t) for t in special_tokens], limit_alphabet=limit_alphabet,
                            initial_alphabet=initial_alphabet, prefix=continuing_subword_prefix)
        return cls(vocab, lowercase=lowercase, strip_accents=strip_accents, clean_text=clean_text,
                   handle_chinese_chars=handle_chinese_chars,
                   continuing_subword_prefix=continuing_subword_prefix, **kwargs)
