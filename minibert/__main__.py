import sys

from minibert.cli import run

sys.exit(run())
