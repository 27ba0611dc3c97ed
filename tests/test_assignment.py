"""Course-assignment mode: stubbing keeps signatures and docstrings; the autograder fails every graded check on
the stubbed package and passes every one on the reference (each run in a subprocess, as a student would)."""

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import minibert
from minibert.cli import main
from minibert.course import GRADED, stub_source
from minibert.course.make import _find

REPO = Path(minibert.__file__).resolve().parent.parent


def test_stub_source_keeps_signature_decorators_and_docstring():
    source = ('import functools\n\n\nclass A:\n    @functools.cache\n    def f(self, x,\n          y=1):\n'
              '        """Doc."""\n        def helper():\n            return 2\n        return x + y + helper()\n\n'
              '    def g(self):\n        return 3\n\n\ndef h(x):\n    # comment\n    return x\n')
    stubbed = stub_source(source, ["A.f", "h"])
    tree = ast.parse(stubbed)
    f, h = _find(tree, "A.f"), _find(tree, "h")
    assert ast.get_docstring(f) == "Doc." and [d.attr for d in f.decorator_list] == ["cache"]
    assert [a.arg for a in f.args.args] == ["self", "x", "y"]
    assert isinstance(f.body[1], ast.Raise) and len(f.body) == 2
    assert isinstance(h.body[0], ast.Raise) and len(h.body) == 1
    assert _find(tree, "A.g").body[0].value.value == 3          # untouched


def test_stub_source_rejects_unknown_names():
    with pytest.raises(LookupError, match="nope"):
        stub_source("def f():\n    return 1\n", ["nope"])


@pytest.fixture(scope="module")
def assignments(tmp_path_factory):
    root = tmp_path_factory.mktemp("course")
    assert main(["assignment", "make", str(root / "student")]) == 0
    assert main(["assignment", "make", str(root / "solution"), "--solution"]) == 0
    return root


def grade(folder: Path) -> dict:
    scores = folder.parent / f"{folder.name}-scores.json"
    env = {**os.environ, "PYTHONPATH": str(REPO), "JAX_PLATFORMS": "cpu"}
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(folder / "autograder"),
                          "--scores-json", str(scores)], cwd=folder.parent, env=env, capture_output=True, text=True)
    assert "assignment scores" in run.stdout, run.stdout + run.stderr
    return json.loads(scores.read_text())


def test_student_version_is_stubbed(assignments):
    for g in GRADED:
        tree = ast.parse((assignments / "student" / g.path).read_text())
        body = _find(tree, g.qualname).body
        assert isinstance(body[-1], ast.Raise) and len(body) <= 2
    assert (assignments / "student/minibert/nn/attention.py").read_text().count("def padding_mask") == 1


def test_stubbed_version_fails_every_graded_check(assignments):
    scores = grade(assignments / "student")
    assert set(scores) == {g.name for g in GRADED}
    assert all(s["passed"] == 0 and s["total"] > 0 for s in scores.values()), scores


def test_reference_passes_every_graded_check(assignments):
    scores = grade(assignments / "solution")
    assert set(scores) == {g.name for g in GRADED}
    assert all(s["passed"] == s["total"] > 0 for s in scores.values()), scores


def test_make_refuses_a_used_folder(assignments):
    with pytest.raises(FileExistsError):
        main(["assignment", "make", str(assignments / "student")])
