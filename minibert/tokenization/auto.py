"""`AutoTokenizer.from_pretrained(name_or_dir)`: the right tokenizer for a checkpoint directory
(or Hub name), as transformers' AutoTokenizer picks it, from the files there, in this order:

1. tokenizer.json (tokenizers' format, files.py): any model, normalizer, template, ...;
2. vocab.txt: BERT's WordPiece (tokenizer.py);
3. vocab.json + merges.txt: byte-level BPE, RoBERTa's layout (bpe.py, byte_level.py);
4. a SentencePiece model, spm.model or *.model (sentencepiece.py).

tokenizer_config.json, when present, gives the special tokens by role, `model_max_length`,
the padding and truncation sides, `clean_up_tokenization_spaces` and `model_input_names`.
"""

import importlib
import json
from pathlib import Path

from minibert.checkpoints.hub import resolve
from minibert.tokenization import files
from minibert.tokenization.base import SPECIAL_TOKEN_ROLES, Tokenizer
from minibert.tokenization.tokenizer import WordPieceTokenizer

# transformers' "no limit" (1e30) is clipped to this.
NO_LIMIT = 1 << 31
# Tokenizer classes that return no token type ids (transformers 5's model_input_names; its
# generic class, which PreTrainedTokenizerFast(tokenizer_object=...).save_pretrained names,
# neither).
WITHOUT_TOKEN_TYPES = ("Roberta", "ModernBert", "XLMRoberta", "Longformer", "Bart", "GPT2",
                       "Albert", "TokenizersBackend", "PreTrainedTokenizerFast")


def _content(value):
    """A special token as tokenizer_config.json writes it: a str, or an AddedToken object."""
    return value.get("content") if isinstance(value, dict) else value


def config_options(config: dict) -> dict:
    """The tokenizer options tokenizer_config.json gives (the constructor's arguments)."""
    options = {role: _content(config[role]) for role in SPECIAL_TOKEN_ROLES
               if isinstance(_content(config.get(role)), str)}
    if "model_max_length" in config:
        options["model_max_length"] = min(int(config["model_max_length"]), NO_LIMIT)
    for key in ("padding_side", "truncation_side", "clean_up_tokenization_spaces",
                "model_input_names"):
        if key in config:
            options[key] = config[key]
    cls = config.get("tokenizer_class") or ""
    if "model_input_names" not in options and cls.startswith(WITHOUT_TOKEN_TYPES):
        options["model_input_names"] = ["input_ids", "attention_mask"]
    return options


def _preset_options(options: dict, kwargs: dict) -> dict:
    """The caller's options, and model_input_names from tokenizer_config.json (the WordPiece
    preset reads the rest of the file itself)."""
    return {k: v for k, v in options.items() if k == "model_input_names"} | kwargs


class AutoTokenizer:
    """`AutoTokenizer.from_pretrained(name_or_dir, **kwargs) -> Tokenizer`."""

    def __init__(self):
        raise TypeError("use AutoTokenizer.from_pretrained(name_or_directory)")

    @classmethod
    def from_pretrained(cls, name_or_dir, **kwargs) -> Tokenizer:
        """Raises FileNotFoundError naming the directory when it holds no tokenizer file,
        TokenizerFileError (a ValueError) for a file it cannot read."""
        directory = Path(resolve(name_or_dir))
        config_file = directory / "tokenizer_config.json"
        config = json.loads(config_file.read_text(encoding="utf-8")) \
            if config_file.is_file() else {}
        options = config_options(config) | kwargs

        json_file = directory / "tokenizer.json"
        if json_file.is_file():
            data = json.loads(json_file.read_text(encoding="utf-8"))
            model, normalizer = data.get("model") or {}, data.get("normalizer") or {}
            if model.get("type") == "WordPiece" and normalizer.get("type") == "BertNormalizer":
                return WordPieceTokenizer.from_pretrained(directory,
                                                          **_preset_options(options, kwargs))
            return files.from_dict(data, str(json_file), **options)
        if (directory / "vocab.txt").is_file():
            return WordPieceTokenizer.from_pretrained(directory,
                                                      **_preset_options(options, kwargs))
        if (directory / "vocab.json").is_file() and (directory / "merges.txt").is_file():
            return byte_level_bpe(directory, config, options)
        models = [directory / "spm.model"] + sorted(directory.glob("*.model"))
        model_file = next((m for m in models if m.is_file()), None)
        if model_file is not None:
            sentencepiece = importlib.import_module("minibert.tokenization.sentencepiece")
            return sentencepiece.from_file(model_file, config=config, **options)
        raise FileNotFoundError(
            f"{directory} has no tokenizer: expected tokenizer.json, vocab.txt, vocab.json + "
            "merges.txt, or a SentencePiece .model file")


    @classmethod
    def from_file(cls, path, **kwargs) -> Tokenizer:
        """One tokenizer file: a tokenizer.json (any .json), a SentencePiece .model, or else a
        WordPiece vocab.txt."""
        path = Path(path)
        if path.suffix == ".json":
            return files.load(path, **kwargs)
        if path.suffix == ".model":
            sentencepiece = importlib.import_module("minibert.tokenization.sentencepiece")
            return sentencepiece.from_file(path, **kwargs)
        return WordPieceTokenizer.from_file(path, **kwargs)

    @classmethod
    def train(cls, files_or_iterator, vocab_size=30522, model="wordpiece", **kwargs) -> Tokenizer:
        """A new vocabulary learned with `model` ("wordpiece", "bpe" or "unigram"), laid out as BERT's, RoBERTa's
        or ALBERT's tokenizer (recipes.py documents each and the options)."""
        from minibert.tokenization import recipes

        return recipes.train(files_or_iterator, vocab_size, model=model, **kwargs)


def byte_level_bpe(directory: Path, config: dict, options: dict) -> Tokenizer:
    """RoBERTa's tokenizer from vocab.json + merges.txt: byte-level pre-tokenizer and decoder,
    `<s> A </s></s> B </s>` (transformers 5's RobertaTokenizer defaults; its <mask> does not take
    the space before it, unlike transformers 4's)."""
    from minibert.tokenization import template
    from minibert.tokenization.bpe import BPE
    from minibert.tokenization.byte_level import ByteLevel, ByteLevelDecoder

    add_prefix_space = config.get("add_prefix_space", False)
    trim_offsets = config.get("trim_offsets", True)
    model = BPE.from_files(directory / "vocab.json", directory / "merges.txt")
    roles = {"bos_token": "<s>", "eos_token": "</s>", "sep_token": "</s>", "cls_token": "<s>",
             "unk_token": "<unk>", "pad_token": "<pad>", "mask_token": "<mask>"} | {
        role: t for role, t in options.items() if role in SPECIAL_TOKEN_ROLES}
    roles = {role: t for role, t in roles.items() if t in model.vocab}
    processor = None
    if "cls_token" in roles and "sep_token" in roles:
        processor = template.RobertaProcessing(
            (roles["sep_token"], model.vocab[roles["sep_token"]]),
            (roles["cls_token"], model.vocab[roles["cls_token"]]), trim_offsets, add_prefix_space)
    options = {"model_input_names": ["input_ids", "attention_mask"]} | options | roles
    return Tokenizer(model, pre_tokenizer=ByteLevel(add_prefix_space, trim_offsets),
                     post_processor=processor, decoder=ByteLevelDecoder(), **options)
