"""Text corpora as documents: lists of text segments (sentences or lines), in reading order.

A corpus is one or more text files or folders. Documents are separated by blank lines, and a new file
always starts a new document; within a document, every non-empty line is split into sentences, the
segments from which NSP pairs are built (Devlin et al., 2019, §3.1 Task #2 and Appendix A.2).

The embedded default corpus, used when no corpus is given, is the English prose of the Python standard
library's docstrings, read from the `.py` sources of the running interpreter with `ast` (nothing is
imported or executed): about 1 MB of technical English that every Python install carries, offline.
"""

from __future__ import annotations

import ast
import re
import sysconfig
from pathlib import Path

SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'(\[])")
STDLIB_SKIP = {"test", "tests", "idlelib", "lib2to3", "site-packages", "dist-packages", "turtledemo", "ensurepip",
               "__pycache__", "tkinter"}


def split_sentences(line: str) -> list[str]:
    """A line of prose → its sentences, split after '.', '!' or '?' followed by a capital."""
    return [s for s in SENTENCE_END.split(line.strip()) if s]


def documents_from_text(text: str) -> list[list[str]]:
    """Blank-line-separated blocks → documents, each a list of sentences. CR line ends are fine."""
    documents = []
    for block in re.split(r"\n\s*\n", text.replace("\r", "")):
        sentences = [s for line in block.splitlines() for s in split_sentences(line)]
        if sentences:
            documents.append(sentences)
    return documents


def corpus_files(paths: list[str | Path]) -> list[Path]:
    """Files named directly, plus every file under the named folders, sorted; a clear error if none."""
    files = []
    for path in map(Path, paths):
        if path.is_dir():
            files += sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
        elif path.is_file():
            files.append(path)
        else:
            raise FileNotFoundError(f"corpus path {path} does not exist")
    if not files:
        raise ValueError(f"the corpus {', '.join(map(str, paths))} holds no files")
    return files


def read_documents(paths: list[str | Path]) -> list[list[str]]:
    """Every document of the corpus; an empty corpus is an error."""
    documents = []
    for file in corpus_files(paths):
        try:
            documents += documents_from_text(file.read_text(encoding="utf-8"))
        except UnicodeDecodeError as e:
            raise ValueError(f"{file} is not UTF-8 text ({e})") from e
    if not documents:
        raise ValueError(f"the corpus {', '.join(map(str, paths))} holds no text")
    return documents


def python_docstrings() -> list[list[str]]:
    """The embedded default corpus: every docstring of the standard library's pure-Python modules that
    reads as prose (doctest examples and indented code dropped), one document per docstring paragraph group."""
    root = Path(sysconfig.get_paths()["stdlib"])
    documents = []
    for file in sorted(root.rglob("*.py")):
        if set(file.relative_to(root).parts[:-1]) & STDLIB_SKIP:
            continue
        try:
            tree = ast.parse(file.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                docstring = ast.get_docstring(node)
                if docstring and len(docstring) > 80:
                    prose = "\n".join(line for line in docstring.splitlines()
                                      if not line.startswith((" ", "\t", ">>>", "...")))
                    documents += [d for d in documents_from_text(prose) if sum(map(len, d)) > 40]
    return documents
