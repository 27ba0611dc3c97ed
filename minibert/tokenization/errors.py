"""The one error a tokenizer file gets (tokenizer.json, vocab.txt, merges.txt, a SentencePiece `.model`): a
ValueError whose message names the file, the section or line, and what is wrong there."""


class TokenizerFileError(ValueError):
    """A tokenizer file that cannot be read; the message names the file and section."""
