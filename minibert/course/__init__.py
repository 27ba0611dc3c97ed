"""Course-assignment mode: hand out minibert with its key functions blanked, and grade the answers.

    minibert assignment make OUT_DIR              # OUT_DIR/minibert (stubbed) + OUT_DIR/autograder
    pytest OUT_DIR/autograder                     # per-function scores of the student's code in OUT_DIR
    pytest OUT_DIR/autograder --tb=short          # the same, then the failing checks' tracebacks
    minibert assignment make OUT_DIR --solution   # the same, unstubbed: the autograder's own check

The functions a student writes are listed in `GRADED` (graded.py). `make` copies the package and replaces
each listed function's body by `raise NotImplementedError(...)`, keeping its signature and docstring
(located with `ast`, so decorators, nested helpers and multi-line signatures are handled exactly), to which it
adds the names of the function's checks. The autograder loads the student's copy of each graded module from its
file and compares the student's function against the installed minibert's reference on random inputs (or, for
the randomised MLM mask, checks the properties that define it). It prints the score table first (one score per
function), then one line per failing check saying what it expected and what came back; tracebacks only with
`--tb`.
"""

from minibert.course.graded import GRADED, Graded
from minibert.course.make import make_assignment, stub_source

__all__ = ["GRADED", "Graded", "make_assignment", "stub_source"]
