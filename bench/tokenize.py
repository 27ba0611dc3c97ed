"""Tokenizer throughput: the from-scratch WordPiece encoder vs Hugging Face `tokenizers`.

    python bench/tokenize.py [--data ../shared/data] [--vocab-size 30522] [--repeat 3]

Trains one uncased vocabulary with the reference trainer on wiki.valid.raw, then encodes every
line of wiki.valid.raw + wiki.test.raw with both encoders, single-threaded (RAYON_NUM_THREADS=1,
TOKENIZERS_PARALLELISM=false), one `encode` call per line and one `encode_batch` call for all,
and prints MB/s of UTF-8 input and the ratio for each: best of `--repeat` passes after a warm-up
pass, which fills the from-scratch encoder's word cache as any long-running use would; and
once more from an empty cache (a fresh tokenizer).
"""

import os
import sys
from pathlib import Path

# This script shares its name with the standard library's `tokenize` (which numpy and jax
# import): keep its own folder off the import path, and put the repository on it instead.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE] + [str(_HERE.parent)]

os.environ["RAYON_NUM_THREADS"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"

import argparse  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

from minibert.tokenization.tokenizer import WordPieceTokenizer  # noqa: E402


def best_time(encode, lines, repeat):
    encode(lines)  # warm-up
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        encode(lines)
        times.append(time.perf_counter() - start)
    return min(times)


def main():
    root = Path(__file__).resolve().parents[1]
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=root.parent / "shared" / "data")
    parser.add_argument("--vocab-size", type=int, default=30522)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    from tokenizers import BertWordPieceTokenizer

    wiki = args.data / "wikitext-2-raw"
    files = [wiki / "wiki.valid.raw", wiki / "wiki.test.raw"]
    lines = [line for f in files for line in f.read_text(encoding="utf-8").splitlines()]
    megabytes = sum(len(line.encode("utf-8")) for line in lines) / 1e6

    reference = BertWordPieceTokenizer(lowercase=True)
    reference.train([str(files[0])], vocab_size=args.vocab_size, show_progress=False)
    with tempfile.TemporaryDirectory() as tmp:
        vocab_file = reference.save_model(tmp)[0]
        reference = BertWordPieceTokenizer(vocab_file, lowercase=True)
        ours = WordPieceTokenizer.from_file(vocab_file, lowercase=True)
        fresh = WordPieceTokenizer.from_file(vocab_file, lowercase=True)

    print(f"WikiText-2 valid+test: {len(lines)} lines, {megabytes:.2f} MB, "
          f"vocab {reference.get_vocab_size()}, uncased, single-threaded")
    modes = {
        "encode per line": (lambda ls: [ours.encode(line) for line in ls],
                            lambda ls: [reference.encode(line) for line in ls]),
        "encode_batch": (ours.encode_batch, reference.encode_batch),
    }
    start = time.perf_counter()
    fresh.encode_batch(lines)
    t_cold = time.perf_counter() - start
    for mode, (encode_ours, encode_reference) in modes.items():
        t_ours = best_time(encode_ours, lines, args.repeat)
        t_ref = best_time(encode_reference, lines, args.repeat)
        print(f"{mode:>16}: minibert (from scratch) {megabytes / t_ours:6.2f} MB/s, "
              f"tokenizers (reference) {megabytes / t_ref:6.2f} MB/s, "
              f"ratio {t_ref / t_ours:.2f}x (target >= 0.2x)")
    print(f"encode_batch from an empty word cache: minibert {megabytes / t_cold:6.2f} MB/s, "
          f"ratio {t_ref / t_cold:.2f}x")


if __name__ == "__main__":
    main()
