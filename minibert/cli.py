"""The `minibert` command line: prepare, pretrain, fill-mask, parity, assignment make, finetune, the task
pipelines (text-/token-classification, question-answering), distill and quantize.

Each subcommand is a thin wrapper over a library function; `python -m minibert` works the same. Bad input
(a missing file, a bad record, an option out of range) ends with one line naming it, not a traceback.
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


def train_config(args, **overrides):
    """The training loop's options from the arguments every training command shares."""
    from minibert.training.loop import TrainConfig

    values = dict(steps=args.steps, learning_rate=args.lr, warmup_steps=args.warmup, decay=args.decay,
                  weight_decay=args.weight_decay, grad_accumulation=args.grad_accumulation, seed=args.seed,
                  log_every=args.log_every, eval_every=args.eval_every, save_every=args.save_every,
                  output_dir=args.output)
    return TrainConfig(**{**values, **overrides})


def prepare(args) -> int:
    from minibert.training.prepare import PrepareConfig, prepare as run, summary

    manifest = run(PrepareConfig(corpus=args.corpus, output=args.output, vocab=args.vocab, vocab_size=args.vocab_size,
                                 lowercase=not args.cased, vocab_sample_mb=args.vocab_sample, workers=args.workers,
                                 backend=args.backend, text_field=args.text_field, strict=args.strict, seed=args.seed))
    print(f"prepared {args.output}: {summary(manifest)}")
    print(f"train on it with: minibert pretrain --data {args.output} ...")
    return 0


def pretrain(args) -> int:
    from minibert.tasks.pipelines import fill_mask
    from minibert.training.pretrain import PretrainConfig, pretrain as run

    train = train_config(args)
    config = PretrainConfig(family=args.family, size=args.size, objective=args.objective, data=args.data,
                            corpus=args.corpus, text_field=args.text_field, workers=args.workers, vocab=args.vocab, vocab_size=args.vocab_size, lowercase=not args.cased,
                            seq_len=args.seq_len, batch_size=args.batch_size, mask_rate=args.mask_rate,
                            whole_word=args.whole_word, dtype=args.dtype, attention=args.attention,
                            resume=args.resume, train=train)
    model, tokenizer, history = run(config)
    if not history:
        print(f"{args.output} was already trained for {args.steps} steps: nothing to do")
        return 0
    first, last = history[0], history[-1]
    print(f"loss {first['loss']:.3f} (step {first['step']}) → {last['loss']:.3f} (step {last['step']})"
          + (f"; held-out MLM accuracy {last['eval_accuracy']:.3f}, perplexity {last['eval_perplexity']:.1f}"
             if "eval_accuracy" in last else ""))
    print(f"saved to {args.output} (config.json, model.safetensors, vocab.txt)")
    for text in args.demo or (DEMO_SENTENCES if not (args.corpus or args.data) else []):
        print_fill_mask(fill_mask(model, tokenizer, text), text)
    return 0


DEMO_SENTENCES = ["Return a new [MASK] of the items.", "If the file does not [MASK], an error is raised.",
                  "This module provides functions for working with [MASK]."]


def print_fill_mask(results, text: str) -> None:
    print(text)
    for candidates in results:
        print("   " + "   ".join(f"{c['token_str']} {c['score']:.3f}" for c in candidates))


def distill(args) -> int:
    from minibert.training.distill import DistillConfig, distill as run

    train = train_config(args)
    config = DistillConfig(teacher=args.teacher, family=args.family, size=args.size, data=args.data,
                           corpus=args.corpus, text_field=args.text_field, workers=args.workers,
                           seq_len=args.seq_len, batch_size=args.batch_size, mask_rate=args.mask_rate,
                           whole_word=args.whole_word, dtype=args.dtype, attention=args.attention, resume=args.resume,
                           transfer_steps=args.transfer_steps, progressive=args.progressive, alpha=args.alpha,
                           temperature=args.temperature, train=train)
    _, _, history = run(config)
    for stage in dict.fromkeys(r["stage"] for r in history):
        records = [r for r in history if r["stage"] == stage]
        held_out = [r for r in records if "student_eval_loss" in r]
        print(f"{stage}: loss {records[0]['loss']:.3f} → {records[-1]['loss']:.3f}"
              + (f"; student held-out MLM loss {held_out[-1]['student_eval_loss']:.3f}, accuracy "
                 f"{held_out[-1]['student_eval_accuracy']:.3f}" if held_out else ""))
    print(f"saved the student to {args.output} (config.json, model.safetensors, vocab.txt)")
    return 0


def fill_mask_command(args) -> int:
    from minibert.checkpoints.hf import from_pretrained
    from minibert.tasks.pipelines import fill_mask
    from minibert.tokenization.tokenizer import WordPieceTokenizer

    model, tokenizer = from_pretrained(args.model), WordPieceTokenizer.from_pretrained(args.model)
    for text in args.text:
        print_fill_mask(fill_mask(model, tokenizer, text, top_k=args.top_k), text)
    return 0


def assignment_make(args) -> int:
    from minibert.course import GRADED, make_assignment

    out = make_assignment(args.out_dir, solution=args.solution)
    print(f"wrote {out / 'minibert'} ({'solution' if args.solution else 'stubbed: ' + ', '.join(g.qualname for g in GRADED)})")
    print(f"grade with: pytest {out / 'autograder'}")
    return 0


def finetune(args) -> int:
    from minibert.training.finetune import FinetuneConfig, finetune as run

    train = train_config(args, steps=args.steps or 0, warmup_steps=args.warmup or 0)  # (else set by epochs, ratio)
    config = FinetuneConfig(task=args.task, model=args.model, train_file=args.train, eval_file=args.eval,
                            max_length=args.max_length, batch_size=args.batch_size,
                            eval_batch_size=args.eval_batch_size, epochs=None if args.steps else args.epochs,
                            warmup_ratio=None if args.warmup is not None else args.warmup_ratio,
                            train_limit=args.train_limit, eval_limit=args.eval_limit, doc_stride=args.doc_stride,
                            max_query_length=args.max_query_length, max_answer_length=args.max_answer_length,
                            dtype=args.dtype, resume=args.resume, teacher=args.teacher, alpha=args.alpha,
                            temperature=args.temperature, train=train)
    result = run(config)
    for note in result.notes:
        print(note)
    if result.best.get("step") is not None:
        scores = ", ".join(f"{k} {v:.4f}" for k, v in result.best.items() if k != "step")
        print(f"best dev scores (step {result.best['step']}): {scores}")
        if result.baseline:
            print("majority-class baseline: " + ", ".join(f"{k} {v:.4f}" for k, v in result.baseline.items()))
    print(f"saved to {args.output} (config.json, model.safetensors, vocab.txt)")
    return 0


def _task_model(path):
    import minibert.models.finetuning  # noqa: F401  (registers the task heads)
    from minibert.checkpoints.hf import from_pretrained
    from minibert.tokenization.tokenizer import WordPieceTokenizer

    return from_pretrained(path), WordPieceTokenizer.from_pretrained(path)


def text_classification_command(args) -> int:
    from minibert.tasks.pipelines import text_classification

    model, tokenizer = _task_model(args.model)
    for text, result in zip(args.text, text_classification(model, tokenizer, args.text, top_k=args.top_k)):
        print(f"{text}\n   " + "   ".join(f"{r['label']} {r['score']:.3f}" for r in
                                          (result if isinstance(result, list) else [result])))
    return 0


def token_classification_command(args) -> int:
    from minibert.tasks.pipelines import token_classification

    model, tokenizer = _task_model(args.model)
    for text in args.text:
        print(text)
        for e in token_classification(model, tokenizer, text, aggregation_strategy=args.aggregation):
            print(f"   {e.get('entity_group', e.get('entity'))} {e['word']!r} [{e['start']}:{e['end']}] {e['score']:.3f}")
    return 0


def question_answering_command(args) -> int:
    from minibert.tasks.pipelines import question_answering

    model, tokenizer = _task_model(args.model)
    answers = question_answering(model, tokenizer, args.question, args.context, top_k=args.top_k)
    for a in answers if isinstance(answers, list) else [answers]:
        print(f"{a['answer']!r} [{a['start']}:{a['end']}] {a['score']:.3f}")
    return 0


def quantize_command(args) -> int:
    import json
    from pathlib import Path

    from minibert.quantization import REPORT_NAME, WEIGHTS_NAME, quantize_pretrained

    report = quantize_pretrained(args.model, args.out_dir)
    worst = report.worst
    print(f"quantized {len(report.quantized)} tensors to int8 (per-channel, symmetric), kept {len(report.kept)} "
          f"as they were (1-D: biases, norms)")
    print(f"weights: {report.float_bytes / 1e6:.2f} MB float32 → {report.int8_bytes / 1e6:.2f} MB int8 "
          f"({100 * report.ratio:.1f}%)")
    print(f"largest error: {worst.key} max |w − ŵ| {worst.max_abs_error:.3g} = {100 * worst.relative_error:.3f}% of "
          f"its max |w| (bound 1/254 = 0.394%)")
    results = report.to_dict()
    if args.eval:
        from minibert.training.finetune import evaluate_classifier

        scores = {}
        for name, path in (("float32", args.model), ("int8", args.out_dir)):
            model, tokenizer = _task_model(path)      # the int8 one through dequantize-on-load
            scores[name] = evaluate_classifier(model, tokenizer, args.eval, max_length=args.max_length,
                                               batch_size=args.eval_batch_size, limit=args.eval_limit)
        change = {k: 100 * (scores["int8"][k] - scores["float32"][k]) for k in scores["float32"]}
        for k in change:
            print(f"dev {k}: float32 {scores['float32'][k]:.4f}, int8 {scores['int8'][k]:.4f} "
                  f"({change[k]:+.2f} points)")
        results["eval"] = {"file": str(args.eval), "limit": args.eval_limit, **scores, "change_points": change}
    (Path(args.out_dir) / REPORT_NAME).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"saved to {args.out_dir} (config.json, {WEIGHTS_NAME}, tokenizer files, {REPORT_NAME})")
    return 0


def add_corpus_arguments(p, *, mask_help: str, attention_help: str) -> None:
    """The text, the examples and their masking: what pretraining and distillation share."""
    p.add_argument("--corpus", nargs="+", help="text files or folders, prepared into OUTPUT/data first (default: the "
                                               "embedded Python docstrings); see `minibert prepare` for other formats")
    p.add_argument("--data", help="a corpus prepared by `minibert prepare` (instead of --corpus)")
    p.add_argument("--workers", type=int, default=0, help="processes that prepare --corpus (0: every core)")
    p.add_argument("--text-field", default="text", help="the text's field when --corpus is JSON Lines or Parquet")
    p.add_argument("--seq-len", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--mask-rate", type=float, help=mask_help)
    p.add_argument("--whole-word", action="store_true", help="mask every piece of a chosen word")
    p.add_argument("--attention", default="auto", choices=["auto", "reference", "fused"], help=attention_help)


def add_training_arguments(p, *, steps: int | None, lr: float, warmup: int | None, eval_every: int, save_every: int,
                           output: str, steps_help: str = "optimizer updates", warmup_help: str | None = None,
                           eval_help: str | None = None, save_help: str | None = None) -> None:
    """The options `train_config` reads (the training loop's), plus the compute dtype, with this command's defaults."""
    p.add_argument("--steps", type=int, default=steps, help=steps_help)
    p.add_argument("--lr", type=float, default=lr)
    p.add_argument("--warmup", type=int, default=warmup, help=warmup_help)
    p.add_argument("--decay", default="linear", choices=["linear", "cosine"])
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--grad-accumulation", type=int, default=1)
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"], help="compute dtype")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--log-every", type=int, default=20)
    p.add_argument("--eval-every", type=int, default=eval_every, help=eval_help)
    p.add_argument("--save-every", type=int, default=save_every, help=save_help)
    p.add_argument("--output", default=output)
    p.add_argument("--resume", action="store_true", help="continue from the output directory's last checkpoint")


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

    p = commands.add_parser("prepare", help="tokenize a corpus once into shards of token ids, for pretrain --data")
    p.add_argument("--corpus", nargs="+", help="text files or folders (.gz too), JSON Lines, Parquet, a datasets "
                                               "save_to_disk folder, hub:PATH for datasets.load_dataset on local "
                                               "files (default: the embedded Python docstrings)")
    p.add_argument("--output", required=True, help="the prepared directory (a killed run continues in it)")
    p.add_argument("--vocab", help="vocab.txt or tokenizer directory (default: train one on a sample of the corpus)")
    p.add_argument("--vocab-size", type=int, default=4000, help="entries of a trained vocabulary (default 4000)")
    p.add_argument("--vocab-sample", type=float, default=100.0, help="MB of text a vocabulary is trained on, at most (default 100)")
    p.add_argument("--cased", action="store_true", help="keep case and accents")
    p.add_argument("--workers", type=int, default=0, help="processes (0: every core)")
    p.add_argument("--backend", default="minibert", choices=["minibert", "tokenizers"],
                   help="tokenizer implementation: from scratch (default), or the Rust tokenizers (identical ids)")
    p.add_argument("--text-field", default="text", help="the text's field in JSON Lines, Parquet and datasets (default text)")
    p.add_argument("--strict", action="store_true", help="records without text and undecodable lines are errors "
                                                         "(default: skipped and counted)")
    p.add_argument("--seed", type=int, default=0, help="seed of the vocabulary's sample (default 0)")
    p.set_defaults(run=prepare)

    p = commands.add_parser("pretrain", help="pretrain a model (default: a tiny BERT on Python's docstrings)")
    p.add_argument("--family", default="bert")
    p.add_argument("--size", default="tiny", help="tiny, mini, small, base, or a paper config (see presets.py)")
    p.add_argument("--objective", help="mlm, mlm+nsp (or rtd for electra); default: the family's own")
    p.add_argument("--vocab", help="vocab.txt or tokenizer directory (default: train one on the corpus)")
    p.add_argument("--vocab-size", type=int, default=4000)
    p.add_argument("--cased", action="store_true", help="keep case and accents (default: uncased)")
    add_corpus_arguments(p, mask_help="masking rate (default: the family's, 0.15; MosaicBERT 0.3)",
                         attention_help="attention implementation (default auto: fused jax.nn.dot_product_attention "
                                        "on GPU/TPU, the reference einsum on CPU)")
    add_training_arguments(p, steps=600, lr=1e-3, warmup=60, eval_every=200, save_every=200,
                           output="runs/minibert-tiny")
    p.add_argument("--demo", nargs="*", help="fill-mask sentences to print at the end")
    p.set_defaults(run=pretrain)

    p = commands.add_parser("distill", help="distil a pretrained masked LM teacher into a smaller student "
                                            "(MobileBERT's layer-wise transfer, then pretraining distillation); "
                                            "for task distillation see finetune --teacher")
    p.add_argument("--teacher", required=True, help="the teacher: a pretrained masked LM directory with vocab.txt")
    p.add_argument("--family", default="mobilebert", help="the student's family")
    p.add_argument("--size", default="tiny", help="the student's size preset (see presets.py)")
    p.add_argument("--transfer-steps", type=int, default=300,
                   help="updates of layer-wise feature-map and attention transfer before pretraining distillation")
    p.add_argument("--progressive", action="store_true",
                   help="transfer one layer at a time, the layers below frozen (MobileBERT §3.6)")
    p.add_argument("--alpha", type=float, default=0.5, help="weight of the MLM loss against the KD loss")
    p.add_argument("--temperature", type=float, default=1.0, help="softmax temperature of the KD loss")
    add_corpus_arguments(p, mask_help="masking rate (default: the student family's)",
                         attention_help="attention implementation (the transfer stages record maps on the reference "
                                        "path)")
    add_training_arguments(p, steps=300, lr=1e-3, warmup=30, eval_every=100, save_every=200, output="runs/distilled",
                           steps_help="updates of pretraining distillation (MLM + KD)",
                           warmup_help="warmup updates (at most a tenth of each stage)",
                           eval_help="updates between held-out evaluations of the student")
    p.set_defaults(run=distill)

    p = commands.add_parser("fill-mask", help="top-k predictions for every [MASK] in a text")
    p.add_argument("--model", required=True, help="a model directory with its tokenizer files")
    p.add_argument("--top-k", type=int, default=5)
    p.add_argument("text", nargs="+")
    p.set_defaults(run=fill_mask_command)

    p = commands.add_parser("assignment", help="course mode: the student version of minibert and its autograder")
    steps = p.add_subparsers(dest="step", required=True)
    p = steps.add_parser("make", help="write OUT_DIR/minibert with the graded functions stubbed, and OUT_DIR/autograder")
    p.add_argument("out_dir")
    p.add_argument("--solution", action="store_true", help="keep the reference bodies (to check the autograder)")
    p.set_defaults(run=assignment_make)

    p = commands.add_parser("finetune", help="fine-tune a model on GLUE-style TSV, CoNLL NER or SQuAD; keep the best")
    p.add_argument("--task", required=True, choices=["glue", "ner", "squad"])
    p.add_argument("--model", required=True, help="Hugging Face model directory with vocab.txt (pretrained or fine-tuned)")
    p.add_argument("--train", required=True, help="training file: TSV with a header, CoNLL, or SQuAD JSON (.json/.zip)")
    p.add_argument("--eval", help="dev file, scored at every evaluation; the best model is kept")
    p.add_argument("--max-length", type=int, help="tokens per row (default 128; squad 384)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--eval-batch-size", type=int, default=64)
    p.add_argument("--epochs", type=float, default=3.0)
    p.add_argument("--warmup-ratio", type=float, default=0.1, help="warmup as a fraction of the steps")
    p.add_argument("--train-limit", type=int, help="train on a seeded random subset of this many examples")
    p.add_argument("--eval-limit", type=int, help="score only the first examples of the dev file")
    p.add_argument("--doc-stride", type=int, default=128, help="squad: step between context windows, in tokens")
    p.add_argument("--max-query-length", type=int, default=64)
    p.add_argument("--max-answer-length", type=int, default=30)
    add_training_arguments(p, steps=None, lr=5e-5, warmup=None, eval_every=200, save_every=1000,
                           output="runs/finetune", steps_help="optimizer updates (instead of --epochs)",
                           warmup_help="warmup steps (instead of --warmup-ratio)",
                           eval_help="steps between dev evaluations (a multiple of --log-every)",
                           save_help="steps between resumable (orbax) checkpoints")
    p.add_argument("--teacher", help="task distillation: a fine-tuned model of the same task, labels and vocabulary "
                                     "whose soft labels the model learns")
    p.add_argument("--alpha", type=float, default=0.5, help="with --teacher: weight of the task loss")
    p.add_argument("--temperature", type=float, default=1.0, help="with --teacher: softmax temperature")
    p.set_defaults(run=finetune)

    p = commands.add_parser("text-classification", help="label texts with a sequence-classification model")
    p.add_argument("--model", required=True)
    p.add_argument("--top-k", type=int, default=1)
    p.add_argument("text", nargs="+")
    p.set_defaults(run=text_classification_command)

    p = commands.add_parser("token-classification", help="named entities in texts, with a token-classification model")
    p.add_argument("--model", required=True)
    p.add_argument("--aggregation", default="simple", choices=["none", "simple", "first", "average", "max"])
    p.add_argument("text", nargs="+")
    p.set_defaults(run=token_classification_command)

    p = commands.add_parser("question-answering", help="the answer to a question, extracted from a context")
    p.add_argument("--model", required=True)
    p.add_argument("--context", required=True)
    p.add_argument("--top-k", type=int, default=1)
    p.add_argument("question")
    p.set_defaults(run=question_answering_command)

    p = commands.add_parser("quantize", help="int8 weights (per-channel, symmetric) for a smaller file; "
                                             "optionally score float and int8 on a dev set")
    p.add_argument("model", help="Hugging Face model directory (config.json + weights)")
    p.add_argument("out_dir", help="where to write the int8 directory (loads with minibert.from_pretrained)")
    p.add_argument("--eval", help="GLUE-style dev TSV: score the float and the int8 sequence classifier on it")
    p.add_argument("--eval-limit", type=int, help="score only the first examples of the dev file")
    p.add_argument("--max-length", type=int, default=128, help="tokens per row")
    p.add_argument("--eval-batch-size", type=int, default=64)
    p.set_defaults(run=quantize_command)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return args.run(args)


def run(argv=None) -> int:
    """The console entry point: `main`, with bad input reported in one line on stderr (exit status 1)."""
    from minibert.training.prepare import PrepareError

    try:
        return main(argv)
    except (ValueError, OSError, PrepareError) as error:      # CorpusError, CheckpointError are ValueErrors
        print(f"minibert: error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(run())
