"""Write the student version of minibert: graded function bodies → `raise NotImplementedError`, plus the autograder."""

from __future__ import annotations

import ast
import shutil
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


def stub_source(source: str, qualnames: list[str], message: str = "assignment: write this function") -> str:
    """`source` with the body of every function in `qualnames` replaced by `raise NotImplementedError(message)`.

    The signature, decorators and docstring stay; everything after the docstring goes (nested helpers too)."""
    tree, lines = ast.parse(source), source.splitlines(keepends=True)
    spans = []
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
        spans.append((first, node.end_lineno, f"{indent}raise NotImplementedError({message + ': ' + qualname!r})\n"))
    for first, last, stub in sorted(spans, reverse=True):               # bottom-up keeps line numbers valid
        lines[first - 1:last] = [stub]
    return "".join(lines)


def make_assignment(out_dir, *, solution: bool = False, graded: tuple[Graded, ...] = GRADED) -> Path:
    """Write `out_dir/minibert` (stubbed, or intact with `solution=True`) and `out_dir/autograder`."""
    out = Path(out_dir)
    if (out / "minibert").exists():
        raise FileExistsError(f"{out / 'minibert'} exists: choose an empty output directory")
    shutil.copytree(PACKAGE, out / "minibert", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copytree(AUTOGRADER, out / "autograder", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    if not solution:
        by_file: dict[str, list[str]] = {}
        for g in graded:
            by_file.setdefault(g.path, []).append(g.qualname)
        for path, qualnames in by_file.items():
            file = out / path
            file.write_text(stub_source(file.read_text(), qualnames))
    return out
