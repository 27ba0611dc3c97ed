"""Course-assignment mode: stubbing keeps signatures and docstrings (and names each function's checks); the
autograder fails every graded check on the stubbed package and passes every one on the reference (each run in a
subprocess, as a student would), and reports the score table first, one line per failing check, no traceback
unless asked."""

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
from minibert.course.make import _find, graded_note

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


def test_stub_source_appends_a_note_to_the_docstring():
    source = ('def f(x):\n    """Doc → x."""\n    return x\n\n\ndef g(x):\n    """Doc.\n\n    More.\n    """\n'
              '    return x\n\n\ndef h(x):\n    return x\n')
    tree = ast.parse(stub_source(source, ["f", "g", "h"], notes={name: f"Graded by {name}." for name in "fgh"}))
    assert ast.get_docstring(_find(tree, "f")) == "Doc → x.\n\nGraded by f."        # (columns count UTF-8 bytes)
    assert ast.get_docstring(_find(tree, "g")) == "Doc.\n\nMore.\n\nGraded by g."
    assert ast.get_docstring(_find(tree, "h")) == "Graded by h."
    assert all(isinstance(_find(tree, name).body[-1], ast.Raise) for name in "fgh")


def test_stub_source_rejects_unknown_names():
    with pytest.raises(LookupError, match="nope"):
        stub_source("def f():\n    return 1\n", ["nope"])


@pytest.fixture(scope="module")
def assignments(tmp_path_factory):
    root = tmp_path_factory.mktemp("course")
    assert main(["assignment", "make", str(root / "student")]) == 0
    assert main(["assignment", "make", str(root / "solution"), "--solution"]) == 0
    return root


def grade(folder: Path, *options: str) -> tuple[dict, str]:
    """The per-function scores and the printed report of `pytest folder/autograder *options`."""
    scores = folder.parent / f"{folder.name}-scores.json"
    env = {**os.environ, "PYTHONPATH": str(REPO), "JAX_PLATFORMS": "cpu"}
    run = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", str(folder / "autograder"),
                          "--scores-json", str(scores), *options], cwd=folder.parent, env=env, capture_output=True,
                         text=True)
    assert "assignment scores" in run.stdout, run.stdout + run.stderr
    return json.loads(scores.read_text()), run.stdout


@pytest.fixture(scope="module")
def stubbed_report(assignments):
    return grade(assignments / "student")


def failing_section(report: str) -> list[str]:
    """The report's lines under its "failing checks" header."""
    lines = report.splitlines()
    start = next(i for i, line in enumerate(lines) if "failing checks" in line) + 1
    end = next(i for i in range(start, len(lines)) if lines[i].startswith(("(", "=")))
    return lines[start:end]


def test_student_version_is_stubbed(assignments):
    for g in GRADED:
        tree = ast.parse((assignments / "student" / g.path).read_text())
        body = _find(tree, g.qualname).body
        assert isinstance(body[-1], ast.Raise) and len(body) <= 2
    assert (assignments / "student/minibert/nn/attention.py").read_text().count("def padding_mask") == 1


def test_stubbed_docstrings_name_their_checks(assignments):
    for g in GRADED:
        docstring = ast.get_docstring(_find(ast.parse((assignments / "student" / g.path).read_text()), g.qualname))
        assert " ".join(graded_note(g).split()) in " ".join(docstring.split())
        assert all(check in docstring for check in g.checks) and f"`pytest autograder -m {g.name}`" in docstring


def test_stubbed_version_fails_every_graded_check(stubbed_report):
    scores, _ = stubbed_report
    assert set(scores) == {g.name for g in GRADED}
    assert all(s["passed"] == 0 and s["total"] > 0 for s in scores.values()), scores


def test_report_is_the_table_then_one_line_per_failing_check_without_tracebacks(stubbed_report):
    _, report = stubbed_report
    sections = [line for line in report.splitlines() if line.startswith("===")]
    assert "test session starts" in sections[0] and "assignment scores" in sections[1]     # the first summary
    table = report.index("assignment scores")
    for g in GRADED:
        assert report.index(g.name, table) > table
    lines = failing_section(report)
    checks = [check for g in GRADED for check in g.checks]
    assert [line.split()[0].rstrip(":") for line in lines] == checks        # one line per check, its seeds together
    assert all(" expected " in line and ", got NotImplementedError: " in line for line in lines), lines
    assert "FAILURES" not in report and "Traceback" not in report and "\nE " not in report
    assert "FAILED" not in report                                        # pytest's own (truncated) lines are gone
    assert len(report.splitlines()) < 14 + len(GRADED) + len(checks)    # a table row per function, a line per check


def test_a_wrong_answer_says_what_was_expected_and_tracebacks_come_on_request(assignments):
    wrong = assignments / "wrong"
    assert main(["assignment", "make", str(wrong)]) == 0
    alibi = wrong / "minibert/nn/alibi.py"
    alibi.write_text(alibi.read_text().replace("raise NotImplementedError('assignment: write this function: "
                                               "alibi_slopes')", "return np.ones(max(num_heads, 1), np.float32)"))
    scores, report = grade(wrong, "-m", "alibi_slopes", "--tb=short")
    assert scores["alibi_slopes"] == {"passed": 0, "total": 3}
    lines = failing_section(report)
    assert lines == [
        "alibi_powers_of_two: 1 heads: slopes[0]: expected 0.00390625, got 1 (1 of 1 values differ by more than 1e-05)",
        "alibi_other_counts: 3 heads: slopes[0]: expected 0.0625, got 1 (3 of 3 values differ by more than 1e-05)",
        "alibi_bad_count: expected a ValueError for 0 heads, got an array of shape (1,)"], lines
    assert report.index("assignment scores") < report.index("FAILURES") < report.index("E   AssertionError")


def test_reference_passes_every_graded_check(assignments):
    scores, report = grade(assignments / "solution")
    assert set(scores) == {g.name for g in GRADED}
    assert all(s["passed"] == s["total"] > 0 for s in scores.values()), scores
    assert "failing checks" not in report


def test_make_refuses_a_used_folder(assignments):
    with pytest.raises(FileExistsError):
        main(["assignment", "make", str(assignments / "student")])
