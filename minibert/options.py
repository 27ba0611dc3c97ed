"""The valid range of every numeric option, declared once on its config dataclass field and checked by both the
library (`check`, before anything is read or compiled) and the command line (`Range.parse`, at parse time).

    batch_size: int = bounded(32, AT_LEAST_1)       # a field: default 32, must be ≥ 1

`check(TrainConfig(log_every=0))` raises `ValueError("log_every must be ≥ 1, got 0")`; the CLI's `--log-every 0`
fails in argparse with "argument --log-every: must be ≥ 1, got 0" (exit status 2). A `None` value (an option
left unset, e.g. `mask_rate=None`: the family's own) is not checked.
"""

from __future__ import annotations

import argparse
import dataclasses
import math


@dataclasses.dataclass(frozen=True)
class Range:
    """An interval of valid values: `low`/`high` (None: unbounded), each end included unless `open_*`; `kind` is
    what a command-line string is parsed as (int or float)."""
    low: float | None = None
    high: float | None = None
    open_low: bool = False
    open_high: bool = False
    kind: type = int

    def __str__(self) -> str:
        if self.high is None:
            return f"{'>' if self.open_low else '≥'} {self.low:g}"
        return f"in {'(' if self.open_low else '['}{self.low:g}, {self.high:g}{')' if self.open_high else ']'}"

    def contains(self, value) -> bool:
        if isinstance(value, float) and math.isnan(value):
            return False
        low_ok = self.low is None or (value > self.low if self.open_low else value >= self.low)
        high_ok = self.high is None or (value < self.high if self.open_high else value <= self.high)
        return low_ok and high_ok

    def check(self, name: str, value) -> None:
        """Raises ValueError naming `name` when `value` (not None) is outside the range."""
        if value is not None and not self.contains(value):
            raise ValueError(f"{name} must be {self}, got {value}")

    def parse(self, text: str):
        """An argparse `type=`: the parsed number, or ArgumentTypeError ("must be ≥ 1, got 0", "not an integer")."""
        try:
            value = self.kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not {'an integer' if self.kind is int else 'a number'}: {text!r}")
        if not self.contains(value):
            raise argparse.ArgumentTypeError(f"must be {self}, got {text}")
        return value


AT_LEAST_1 = Range(1)                                      # counts, sizes, frequencies
AT_LEAST_0 = Range(0)                                      # counts where 0 means none (or: every core)
POSITIVE = Range(0, open_low=True, kind=float)             # learning rates, temperatures
NON_NEGATIVE = Range(0, kind=float)                        # weight decay
UNIT = Range(0, 1, kind=float)                             # weights and fractions, both ends allowed
OPEN_UNIT = Range(0, 1, open_low=True, open_high=True, kind=float)   # rates that must mask something, not all


def bounded(default, valid: Range, **field_options) -> dataclasses.Field:
    """A dataclass field with a default and a valid range (read by `check` and by the CLI)."""
    return dataclasses.field(default=default, metadata={"range": valid}, **field_options)


def range_of(config, name: str) -> Range | None:
    """The declared range of field `name` of a config dataclass (class or instance); None when it has none.
    KeyError for a name that is not a field."""
    return {f.name: f for f in dataclasses.fields(config)}[name].metadata.get("range")


def check(config) -> None:
    """Raises ValueError naming the first field of `config` (a dataclass instance) outside its declared range."""
    for f in dataclasses.fields(config):
        if "range" in f.metadata:
            f.metadata["range"].check(f.name, getattr(config, f.name))
