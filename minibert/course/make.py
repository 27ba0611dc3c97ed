"""Write the student version of minibert: graded function bodies → `raise NotImplementedError`, plus the autograder."""

from __future__ import annotations

import ast
import shutil
import textwrap
from pathlib import Path

import minibert
from minibert.course.graded import GRADED, Graded

PACKAGE = Path(minibert.__file__).parent
AUTOGRADER = Path(__file__).parent / "autograder"


def _find(tree: ast.Module, qualname: str) -> ast.FunctionDef:
    """The (possibly nested in a class) function definition named by `qualname`."""
    scope, node = tree.body, None
    for part in qualname.split("."):
        node = next((n for n in scope if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                     and n.name == part), None)
        if node is None:
            raise LookupError(f"{qualname!r}: no definition named {part!r}")
        scope = node.body
    if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        raise LookupError(f"{qualname!r} is not a function")
    return node


def stub_source(source: str, qualnames: list[str], message: str = "assignment: write this function",
                notes: dict[str, str] | None = None) -> str:
    """`source` with the body of every function in `qualnames` replaced by `raise NotImplementedError(message)`.

    The signature, decorators and docstring stay; everything after the docstring goes (nested helpers too).
    `notes[qualname]`, when given, becomes the last paragraph of that function's docstring (which must then be
    triple-quoted, or absent: the note is then the docstring)."""
    tree, lines = ast.parse(source), source.splitlines(keepends=True)
    notes, spans = notes or {}, []
    for qualname in qualnames:
        node = _find(tree, qualname)
        body = node.body
        has_docstring = isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
            and isinstance(body[0].value.value, str)
        rest = body[1:] if has_docstring else body
        if rest and rest[0].lineno == node.lineno:
            raise ValueError(f"{qualname}: put the body on its own lines to stub it")
        first = rest[0].lineno if rest else node.end_lineno + 1          # 1-based line of the first statement
        indent = " " * (body[0].col_offset)
        stub = f"{indent}raise NotImplementedError({message + ': ' + qualname!r})\n"
        note = "\n".join(textwrap.fill(line, 116, initial_indent=indent, subsequent_indent=indent)
                         for line in notes.get(qualname, "").splitlines())         # each line wrapped alone
        if note and has_docstring:
            _append_to_docstring(lines, body[0], note, qualname)
        elif note:
            stub = f'{indent}"""{note.lstrip()}"""\n' + stub
        spans.append((first, node.end_lineno, stub))
    for first, last, stub in sorted(spans, reverse=True):               # bottom-up keeps line numbers valid
        lines[first - 1:last] = [stub]
    return "".join(lines)


def _append_to_docstring(lines: list[str], docstring: ast.Expr, note: str, qualname: str) -> None:
    """Put `note` (indented lines) as a last paragraph inside `docstring`'s closing quotes; edits the docstring's
    last line of `lines` in place, so the line numbers of everything else stay."""
    line = lines[docstring.end_lineno - 1].encode()                     # ast's columns count UTF-8 bytes
    close = docstring.end_col_offset - 3
    if line[close:close + 3] not in (b'"""', b"'''"):
        raise ValueError(f"{qualname}: its docstring must be triple-quoted to take the autograder's note")
    before, after = line[:close].decode(), line[close:].decode()
    if before.strip():                                                  # text, then the closing quotes
        lines[docstring.end_lineno - 1] = f"{before}\n\n{note}{after}"
    else:                                                               # the closing quotes on their own line
        lines[docstring.end_lineno - 1] = f"\n{note}\n{before}{after}"


def graded_note(graded: Graded) -> str:
    """The sentence `make_assignment` appends to a stubbed function's docstring: the checks that grade it."""
    return (f"Graded by the autograder's checks {', '.join(graded.checks)}.\n"
            f"Run them alone: `pytest autograder -m {graded.name}`.")


def make_assignment(out_dir, *, solution: bool = False, graded: tuple[Graded, ...] = GRADED) -> Path:
    """Write `out_dir/minibert` (stubbed, its docstrings naming their checks; or intact with `solution=True`) and
    `out_dir/autograder`."""
    out = Path(out_dir)
    if (out / "minibert").exists():
        raise FileExistsError(f"{out / 'minibert'} exists: choose an empty output directory")
    shutil.copytree(PACKAGE, out / "minibert", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copytree(AUTOGRADER, out / "autograder", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    if not solution:
        by_file: dict[str, list[Graded]] = {}
        for g in graded:
            by_file.setdefault(g.path, []).append(g)
        for path, entries in by_file.items():
            file = out / path
            file.write_text(stub_source(file.read_text(), [g.qualname for g in entries],
                                        notes={g.qualname: graded_note(g) for g in entries}))
    return out
