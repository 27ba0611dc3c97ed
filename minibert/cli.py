"""The `minibert` command line: `minibert parity HF_DIR`, ...

Each subcommand is a thin wrapper over a library function; `python -m minibert` works the same.
"""

from __future__ import annotations

import argparse
import sys


def parity(args) -> int:
    from minibert.parity import compare, format_table

    rows = compare(args.model, batch_size=args.batch_size, seq_len=args.seq_len, seed=args.seed)
    print(format_table(rows, args.tolerance))
    worst = max(rows, key=lambda r: r.max_abs_diff)
    ok = worst.max_abs_diff <= args.tolerance
    print(f"{'PASS' if ok else 'FAIL'}: largest difference {worst.max_abs_diff:.3e} at {worst.name} "
          f"(tolerance {args.tolerance:g})")
    return 0 if ok else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="minibert", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    p = commands.add_parser("parity", help="compare a Hugging Face checkpoint in minibert and in PyTorch, stage by stage")
    p.add_argument("model", help="Hugging Face model directory (config.json + weights)")
    p.add_argument("--batch-size", type=int, default=3)
    p.add_argument("--seq-len", type=int, default=16)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--tolerance", type=float, default=1e-5, help="max abs difference allowed (default 1e-5)")
    p.set_defaults(run=parity)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
