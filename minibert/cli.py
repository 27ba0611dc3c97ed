"""The `minibert` command line: `minibert pretrain`, `minibert fill-mask`, `minibert parity HF_DIR`.

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


def pretrain(args) -> int:
    from minibert.tasks.pipelines import fill_mask
    from minibert.training.loop import TrainConfig
    from minibert.training.pretrain import PretrainConfig, pretrain as run

    train = TrainConfig(steps=args.steps, learning_rate=args.lr, warmup_steps=args.warmup, decay=args.decay,
                        weight_decay=args.weight_decay, grad_accumulation=args.grad_accumulation, seed=args.seed,
                        log_every=args.log_every, eval_every=args.eval_every, save_every=args.save_every,
                        output_dir=args.output)
    config = PretrainConfig(family=args.family, size=args.size, objective=args.objective, corpus=args.corpus,
                            vocab=args.vocab, vocab_size=args.vocab_size, lowercase=not args.cased,
                            seq_len=args.seq_len, batch_size=args.batch_size, mask_rate=args.mask_rate,
                            whole_word=args.whole_word, dtype=args.dtype, resume=args.resume, train=train)
    model, tokenizer, history = run(config)
    first, last = history[0], history[-1]
    print(f"loss {first['loss']:.3f} (step {first['step']}) → {last['loss']:.3f} (step {last['step']})"
          + (f"; held-out MLM accuracy {last['eval_accuracy']:.3f}, perplexity {last['eval_perplexity']:.1f}"
             if "eval_accuracy" in last else ""))
    print(f"saved to {args.output} (config.json, model.safetensors, vocab.txt)")
    for text in args.demo or (DEMO_SENTENCES if not args.corpus else []):
        print_fill_mask(fill_mask(model, tokenizer, text), text)
    return 0


DEMO_SENTENCES = ["Return a new [MASK] of the items.", "If the file does not [MASK], an error is raised.",
                  "This module provides functions for working with [MASK]."]


def print_fill_mask(results, text: str) -> None:
    print(text)
    for candidates in results:
        print("   " + "   ".join(f"{c['token_str']} {c['score']:.3f}" for c in candidates))


def fill_mask_command(args) -> int:
    from minibert.checkpoints.hf import from_pretrained
    from minibert.tasks.pipelines import fill_mask
    from minibert.tokenization.tokenizer import WordPieceTokenizer

    model, tokenizer = from_pretrained(args.model), WordPieceTokenizer.from_pretrained(args.model)
    for text in args.text:
        print_fill_mask(fill_mask(model, tokenizer, text, top_k=args.top_k), text)
    return 0


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

    p = commands.add_parser("pretrain", help="pretrain a model (default: a tiny BERT on Python's docstrings)")
    p.add_argument("--family", default="bert")
    p.add_argument("--size", default="tiny", help="tiny, mini, small, base, or a paper config (see presets.py)")
    p.add_argument("--objective", help="mlm, mlm+nsp (or rtd for electra); default: the family's own")
    p.add_argument("--corpus", nargs="+", help="text files or folders (default: the embedded Python docstrings)")
    p.add_argument("--vocab", help="vocab.txt or tokenizer directory (default: train one on the corpus)")
    p.add_argument("--vocab-size", type=int, default=4000)
    p.add_argument("--cased", action="store_true", help="keep case and accents (default: uncased)")
    p.add_argument("--seq-len", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--steps", type=int, default=600, help="optimizer updates")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--warmup", type=int, default=60)
    p.add_argument("--decay", default="linear", choices=["linear", "cosine"])
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--grad-accumulation", type=int, default=1)
    p.add_argument("--mask-rate", type=float, help="masking rate (default: the family's, 0.15; MosaicBERT 0.3)")
    p.add_argument("--whole-word", action="store_true", help="mask every piece of a chosen word")
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"], help="compute dtype")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--log-every", type=int, default=20)
    p.add_argument("--eval-every", type=int, default=200)
    p.add_argument("--save-every", type=int, default=200)
    p.add_argument("--output", default="runs/minibert-tiny")
    p.add_argument("--resume", action="store_true", help="continue from the output directory's last checkpoint")
    p.add_argument("--demo", nargs="*", help="fill-mask sentences to print at the end")
    p.set_defaults(run=pretrain)

    p = commands.add_parser("fill-mask", help="top-k predictions for every [MASK] in a text")
    p.add_argument("--model", required=True, help="a model directory with its tokenizer files")
    p.add_argument("--top-k", type=int, default=5)
    p.add_argument("text", nargs="+")
    p.set_defaults(run=fill_mask_command)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
