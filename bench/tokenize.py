"""Tokenizer throughput: the from-scratch WordPiece and byte-level BPE encoders vs Hugging Face
`tokenizers`.

    python bench/tokenize.py [--data ../shared/data] [--vocab-size 30522] [--repeat 3]

Trains one uncased vocabulary with the reference trainer on wiki.valid.raw, then encodes every
line of wiki.valid.raw + wiki.test.raw with both encoders, single-threaded (RAYON_NUM_THREADS=1,
TOKENIZERS_PARALLELISM=false), one `encode` call per line and one `encode_batch` call for all,
and prints MB/s of UTF-8 input and the ratio for each: best of `--repeat` passes after a warm-up
pass, which fills the from-scratch encoder's word cache as any long-running use would; and
once more from an empty cache (a fresh tokenizer). Then the same for byte-level BPE, trained by
the reference's BpeTrainer on wiki.valid.raw with the same vocabulary size; and for Unigram
with the Metaspace pre-tokenizer (ALBERT / DeBERTa-v3 style), trained by its UnigramTrainer;
for these two, the model loop alone and the full `Tokenizer` read from the reference's
tokenizer.json. Times are CPU times of this process (time.process_time), steadier than wall
time on a shared machine; both encoders are single-threaded.
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
        start = time.process_time()
        encode(lines)
        times.append(time.process_time() - start)
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
    start = time.process_time()
    fresh.encode_batch(lines)
    t_cold = time.process_time() - start
    for mode, (encode_ours, encode_reference) in modes.items():
        t_ours = best_time(encode_ours, lines, args.repeat)
        t_ref = best_time(encode_reference, lines, args.repeat)
        print(f"{mode:>16}: minibert (from scratch) {megabytes / t_ours:6.2f} MB/s, "
              f"tokenizers (reference) {megabytes / t_ref:6.2f} MB/s, "
              f"ratio {t_ref / t_ours:.2f}x (target >= 0.2x)")
    print(f"encode_batch from an empty word cache: minibert {megabytes / t_cold:6.2f} MB/s, "
          f"ratio {t_ref / t_cold:.2f}x")
    bench_bpe(args, files, lines, megabytes)
    bench_unigram(args, files, lines, megabytes)


def full_tokenizer_row(saved, reference, lines, megabytes, repeat):
    """The whole pipeline both ways: our `Tokenizer` read from the reference's tokenizer.json
    (added tokens, normalizer, post-processor and `Encoding`s included) vs `tokenizers`."""
    from minibert.tokenization import files

    ours = files.from_dict(saved)
    t_ours = best_time(ours.encode_batch, lines, repeat)
    t_ref = best_time(reference.encode_batch, lines, repeat)
    print(f"{'full Tokenizer':>16}: minibert (from scratch) {megabytes / t_ours:6.2f} MB/s, "
          f"tokenizers (reference) {megabytes / t_ref:6.2f} MB/s, ratio {t_ref / t_ours:.2f}x")


def model_loop_rows(build, reference, lines, megabytes, repeat):
    """The from-scratch pre-tokenizer + model loop (ids and offsets, no special tokens; `build()` gives a fresh
    pair, empty word cache) against the reference's encode_batch: warm, and once from an empty cache."""
    def ours():
        pre, model = build()

        def encode_batch(texts):
            out = []
            for text in texts:
                ids, offsets = [], []
                for word, start, end in pre(text):
                    for i, a, b in model(word):
                        ids.append(i)
                        offsets.append(pre.piece_offsets(word, start, end, a, b))
                out.append((ids, offsets))
            return out
        return encode_batch

    start = time.process_time()
    ours()(lines)
    t_cold = time.process_time() - start
    t_ours = best_time(ours(), lines, repeat)
    t_ref = best_time(lambda ls: reference.encode_batch(ls, add_special_tokens=False), lines, repeat)
    print(f"{'encode_batch':>16}: minibert (from scratch) {megabytes / t_ours:6.2f} MB/s, "
          f"tokenizers (reference) {megabytes / t_ref:6.2f} MB/s, "
          f"ratio {t_ref / t_ours:.2f}x (target >= 0.3x)")
    print(f"encode_batch from an empty word cache: minibert {megabytes / t_cold:6.2f} MB/s, "
          f"ratio {t_ref / t_cold:.2f}x")


def bench_bpe(args, files, lines, megabytes):
    """Byte-level BPE (RoBERTa/ModernBERT style, no prefix space): the from-scratch
    pre-tokenizer + model (ids and offsets, no special tokens) vs `tokenizers` encode_batch."""
    import json

    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    from minibert.tokenization.bpe import BPE
    from minibert.tokenization.byte_level import ByteLevel

    reference = Tokenizer(models.BPE())
    reference.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    reference.decoder = decoders.ByteLevel()
    reference.train([str(files[0])], trainers.BpeTrainer(
        vocab_size=args.vocab_size, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False))
    saved = json.loads(reference.to_str())

    print(f"byte-level BPE, vocab {reference.get_vocab_size()}, no prefix space, "
          f"ids + offsets, no special tokens")
    model_loop_rows(lambda: (ByteLevel.from_json(saved["pre_tokenizer"]), BPE.from_json(saved["model"])),
                    reference, lines, megabytes, args.repeat)
    full_tokenizer_row(saved, reference, lines, megabytes, args.repeat)


def bench_unigram(args, files, lines, megabytes):
    """Unigram + Metaspace (SentencePiece style): the from-scratch pre-tokenizer + model (ids
    and offsets, no special tokens) vs `tokenizers` encode_batch."""
    import json

    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    from minibert.tokenization.metaspace import Metaspace
    from minibert.tokenization.unigram import Unigram

    reference = Tokenizer(models.Unigram())
    reference.pre_tokenizer = pre_tokenizers.Metaspace()
    reference.train([str(files[0])], trainers.UnigramTrainer(
        vocab_size=args.vocab_size, special_tokens=["<unk>"], unk_token="<unk>",
        show_progress=False))
    reference = Tokenizer.from_str(reference.to_str())  # the scores as saved
    saved = json.loads(reference.to_str())

    print(f"Unigram + Metaspace, vocab {reference.get_vocab_size()}, ids + offsets, "
          "no special tokens")
    model_loop_rows(lambda: (Metaspace.from_json(saved["pre_tokenizer"]), Unigram.from_json(saved["model"])),
                    reference, lines, megabytes, args.repeat)
    full_tokenizer_row(saved, reference, lines, megabytes, args.repeat)


if __name__ == "__main__":
    main()
