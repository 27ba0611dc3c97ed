"""Every ```python block of README.md runs as written: in README order, each in a fresh namespace (as a user
pastes it), all in one empty folder (the first ones write the `tiny-bert` directory that later ones read)."""

import re
import traceback
from pathlib import Path

import pytest

README = Path(__file__).parents[1] / "README.md"


def python_blocks(text: str) -> list[tuple[int, str]]:
    """(line number of the block's first code line, code) of every ```python block."""
    return [(text.count("\n", 0, m.start(1)) + 1, m.group(1))
            for m in re.finditer(r"^```python\n(.*?)^```", text, flags=re.M | re.S)]


def test_the_readme_has_python_snippets():
    assert len(python_blocks(README.read_text(encoding="utf-8"))) >= 3


@pytest.mark.slow
def test_every_python_snippet_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    failures = []
    for line, code in python_blocks(README.read_text(encoding="utf-8")):
        try:                             # (padded so that a traceback's line numbers are README.md's)
            exec(compile("\n" * (line - 1) + code, str(README), "exec"), {"__name__": "__readme__"})
        except Exception as error:       # every block runs; all failures reported together
            where = traceback.extract_tb(error.__traceback__)
            at = next((f.lineno for f in reversed(where) if f.filename == str(README)), line)
            failures.append(f"README.md:{at} (the block at line {line}): {type(error).__name__}: {error}")
    assert not failures, "\n".join(failures)
