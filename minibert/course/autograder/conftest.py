"""The autograder's plumbing: find the student's code, load each graded function from it, keep the score.

    pytest OUT_DIR/autograder [--student DIR] [--scores-json FILE] [-m FUNCTION] [--tb=short|long]

DIR (default: the folder above this one) holds the student's `minibert/`. The reference is the `minibert`
installed in this environment, so run pytest from a folder that does not itself contain the student's
`minibert/` (plain `pytest`, not `python -m pytest`, adds no folder to the import path).

The report is the score table, then one line per failing check: what it expected and what came back (the first
line of its AssertionError, or the check's docstring and the exception raised). Tracebacks only on request:
without `--tb`, this conftest sets pytest's `--tb=no` (and drops pytest's own truncated FAILED lines, which the
table replaces); `--tb=short` or `--tb=long` prints them after the table, as pytest does. `-m FUNCTION` (a
marker per graded function, e.g. `-m dot_product_attention`) runs one function's checks.
"""

import collections
import importlib.util
import json
import sys
from pathlib import Path

import pytest

import minibert
from minibert.course.graded import GRADED

SCORES = collections.defaultdict(lambda: [0, 0])  # function name → [passed, total]
FAILURES = {}           # (check, what it expected and what came back) → the seeds it failed with ([None]: no seed)


def pytest_addoption(parser):
    parser.addoption("--student", default=str(Path(__file__).resolve().parent.parent),
                     help="folder holding the student's minibert/ (default: the folder above the autograder)")
    parser.addoption("--scores-json", help="also write the per-function scores to this JSON file")


@pytest.hookimpl(tryfirst=True)                   # before the terminal reporter reads --tb and -r
def pytest_configure(config):
    for g in GRADED:
        config.addinivalue_line("markers", f"{g.name}: the checks of {g.qualname}")
    if config.option.tbstyle == "auto":            # no --tb given: the table's lines replace the tracebacks
        config.option.tbstyle = "no"
        config.option.reportchars = config.option.reportchars.replace("f", "")
    student = Path(config.getoption("--student")).resolve() / "minibert"
    if not student.is_dir():
        raise pytest.UsageError(f"no student package at {student}")
    reference = Path(minibert.__file__).resolve().parent
    if reference == student and (student.parent / "autograder").is_dir():
        raise pytest.UsageError(f"the reference `minibert` imported is the student's copy ({student}): "
                                "run pytest from another folder, and not as `python -m pytest`")


def _load(student_root: Path, graded):
    """The student's version of a graded function: its module file executed under a private name."""
    spec = importlib.util.spec_from_file_location(f"student.{graded.module}", student_root / graded.path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module                # dataclasses (ALBERT's config) look their module up
    spec.loader.exec_module(module)
    obj = module
    for part in graded.qualname.split("."):
        obj = getattr(obj, part)
    return obj


@pytest.fixture(scope="session")
def student(request):
    """student(name) → the student's function; each module is loaded once, when first graded."""
    root, loaded = Path(request.config.getoption("--student")).resolve(), {}

    def get(name):
        if name not in loaded:
            loaded[name] = _load(root, next(g for g in GRADED if g.name == name))
        return loaded[name]
    return get


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    name = item.callspec.params.get("name") if hasattr(item, "callspec") else None
    if name is not None and (report.when == "call" or (report.when == "setup" and report.failed)):
        SCORES[name][1] += 1
        SCORES[name][0] += report.passed
        if report.failed:
            check = item.callspec.params["check"]
            line = one_line(check, call.excinfo.value)
            FAILURES.setdefault((check.__name__, line), []).append(item.callspec.params["seed"])


def one_line(check, error: BaseException) -> str:
    """What a failing check expected and what came back: an AssertionError's first line (the checks write it as
    "expected …, got …"); for any other exception, the check's docstring and the exception."""
    text = str(error).strip().split("\n")[0]
    if isinstance(error, AssertionError) and text:
        return text
    expected = " ".join((check.__doc__ or check.__name__).split())
    return f"expected {expected}, got {type(error).__name__}" + (f": {text}" if text else "")


@pytest.hookimpl(wrapper=True, tryfirst=True)     # around pytest's own summary: the table comes first
def pytest_terminal_summary(terminalreporter, config):
    """The score table, then one line per failing check; pytest's sections (tracebacks with --tb) follow."""
    terminalreporter.write_sep("=", "assignment scores")
    total = [0, 0]
    for g in GRADED:
        passed, tests = SCORES[g.name]
        total[0], total[1] = total[0] + passed, total[1] + tests
        terminalreporter.write_line(f"{g.name:<32} {passed:>3}/{tests:<3} ({g.paper})")
    terminalreporter.write_line(f"{'total':<32} {total[0]:>3}/{total[1]}")
    if FAILURES:
        terminalreporter.write_sep("-", "failing checks: what each expected, what came back")
        for (check, line), seeds in FAILURES.items():   # one line per check (its seeds together when it says the same)
            runs = "" if seeds == [None] else f" (seed {', '.join(map(str, seeds))})"
            terminalreporter.write_line(f"{check}{runs}: {line}")
        if config.option.tbstyle == "no":
            terminalreporter.write_line("(tracebacks: add --tb=short or --tb=long; one function's checks: "
                                        "-m FUNCTION)")
    path = config.getoption("--scores-json")
    if path:
        Path(path).write_text(json.dumps({name: {"passed": p, "total": t} for name, (p, t) in SCORES.items()}))
    return (yield)
