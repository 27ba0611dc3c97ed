"""The `minibert` command line: prepare, pretrain, fill-mask, parity, assignment make, finetune, the task
pipelines (text-/token-classification, question-answering, feature-extraction, sentence-embedding), distill and
quantize.

Each subcommand is a thin wrapper over a library function; `python -m minibert` works the same. An option's
default and valid range are read from its library config's dataclass field (`option`, `minibert.options`), so
`--help` shows what the library does and a value out of range fails at parse time (exit status 2). Every error
ends in one line on stderr, not a traceback (`run`: exit 1 for bad input, 130 when interrupted, and a line that
says how to get the traceback — MINIBERT_TRACEBACK=1 — for anything unexpected).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from minibert.options import AT_LEAST_0, AT_LEAST_1, POSITIVE, Range, range_of


def parity(args) -> int:
    from minibert.parity import compare, format_table

    rows = compare(args.model, batch_size=args.batch_size, seq_len=args.seq_len, seed=args.seed)
    print(format_table(rows, args.tolerance))
    worst = max(rows, key=lambda r: r.relative_diff)
    ok = worst.passes(args.tolerance)
    print(f"{'PASS' if ok else 'FAIL'}: largest relative difference {worst.relative_diff:.3e} at {worst.name} "
          f"(max |diff| {worst.max_abs_diff:.3e}, max |ref| {worst.reference_scale:.3e}; tolerance {args.tolerance:g})")
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

    manifest = run(PrepareConfig(corpus=args.corpus, output=args.output, vocab=args.vocab, tokenizer=args.tokenizer,
                                 vocab_size=args.vocab_size, lowercase=not args.cased, vocab_sample_mb=args.vocab_sample,
                                 workers=args.workers, backend=args.backend, text_field=args.text_field,
                                 strict=args.strict, seed=args.seed))
    print(f"prepared {args.output}: {summary(manifest)}")
    print(f"train on it with: minibert pretrain --data {args.output} ...")
    return 0


def pretrain(args) -> int:
    from minibert.tasks.pipelines import fill_mask
    from minibert.training.pretrain import PretrainConfig, pretrain as run

    train = train_config(args)
    config = PretrainConfig(family=args.family, size=args.size, objective=args.objective, data=args.data,
                            config_file=args.config, config_overrides=args.config_overrides, corpus=args.corpus,
                            text_field=args.text_field, workers=args.workers, vocab=args.vocab,
                            tokenizer=args.tokenizer, vocab_size=args.vocab_size, lowercase=not args.cased,
                            seq_len=args.seq_len, batch_size=args.batch_size, mask_rate=args.mask_rate,
                            whole_word=args.whole_word, dtype=args.dtype, attention=args.attention,
                            resume=args.resume, train=train)
    start = time.perf_counter()
    model, tokenizer, history = run(config)
    if not history:
        print(f"{args.output} was already trained for {args.steps} steps: nothing to do")
        return 0
    for text in args.demo or (DEMO_SENTENCES if not (args.corpus or args.data) else []):
        print_fill_mask(fill_mask(model, tokenizer, text), text)
    print_summary(args, history, time.perf_counter() - start)
    return 0


# Sentences in the corpus's own register whose answer a newcomer can judge (list, value, called).
DEMO_SENTENCES = ["Return a new [MASK] of the items.", "The default [MASK] is None.",
                  "This method is [MASK] when the connection is closed."]


NO_TRANSFORMERS_CLASS = ("mosaicbert", "flex")   # MosaicBERT's is remote code on the Hub; Flex is minibert's own


def print_summary(args, history: list[dict], seconds: float) -> None:
    """The end of a pretraining run: what was reached, what the numbers mean, where the model is, what to do next."""
    first, last = history[0], history[-1]
    print(f"\ndone in {seconds / 60:.1f} min: training loss {first['loss']:.2f} (step {first['step']}) → "
          f"{last['loss']:.2f} (step {last['step']})")
    generator = Path(args.output) / "generator"        # replaced-token detection: the masked LM is the generator
    rtd = generator.is_dir()
    if "eval_accuracy" in last:
        print(f"held-out MLM accuracy {last['eval_accuracy']:.3f}: the share of masked tokens, in documents the model "
              f"never saw, that its first guess gets right" + ("" if rtd else
              f"\nheld-out perplexity {last['eval_perplexity']:.1f}: e^loss, as unsure as a fair pick among that many "
              f"tokens"))
    if rtd:
        print(f"the discriminator (the model to fine-tune): {args.output}/; the generator, a masked LM: {generator}/")
    else:
        own = getattr(args, "family", None) in NO_TRANSFORMERS_CLASS
        loaders = ("minibert.from_pretrained; transformers has no class for it" if own
                   else "minibert.from_pretrained, or transformers' AutoModelForMaskedLM")
        print(f"the model: {args.output}/ — config.json, model.safetensors and the tokenizer files, a Hugging Face "
              f"directory ({loaders})")
    print(f"  fill masks:  minibert fill-mask --model {generator if rtd else args.output} "
          f"\"An exception is [MASK] if the path does not exist.\"\n"
          f"  fine-tune:   minibert finetune --task glue --model {args.output} --train TRAIN.tsv --eval DEV.tsv "
          f"--output {args.output}-glue")


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
                           recipe=args.recipe, transfer_steps=args.transfer_steps, progressive=args.progressive,
                           alpha=args.alpha, temperature=args.temperature, train=train)
    _, _, history = run(config)
    for stage in dict.fromkeys(r["stage"] for r in history):
        records = [r for r in history if r["stage"] == stage]
        held_out = [r for r in records if "student_eval_loss" in r]
        print(f"{stage}: loss {records[0]['loss']:.3f} → {records[-1]['loss']:.3f}"
              + (f"; student held-out MLM loss {held_out[-1]['student_eval_loss']:.3f}, accuracy "
                 f"{held_out[-1]['student_eval_accuracy']:.3f}" if held_out else ""))
    print(f"saved the student to {args.output} (config.json, model.safetensors, tokenizer files)")
    return 0


def fill_mask_command(args) -> int:
    from minibert.checkpoints.hf import from_pretrained
    from minibert.tasks.pipelines import fill_mask
    from minibert.tokenization import AutoTokenizer

    model, tokenizer = from_pretrained(args.model), AutoTokenizer.from_pretrained(args.model)
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
    print(f"saved to {args.output} (config.json, model.safetensors, tokenizer files)")
    return 0


def _task_model(path):
    from minibert.checkpoints.hf import from_pretrained
    from minibert.tokenization import AutoTokenizer

    return from_pretrained(path), AutoTokenizer.from_pretrained(path)


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


def feature_extraction_command(args) -> int:
    """One JSON line per text: {"text", "features"}, its (1, seq, hidden) first output as nested lists."""
    import json

    from minibert.tasks.pipelines import feature_extraction

    model, tokenizer = _task_model(args.model)
    for text, features in zip(args.text, feature_extraction(model, tokenizer, args.text, max_length=args.max_length)):
        print(json.dumps({"text": text, "features": features}))
    return 0


def sentence_embedding_command(args) -> int:
    """One JSON line per text, {"text", "embedding"}; or the (n, dim) float32 array saved to --output (.npy)."""
    import json

    import numpy as np

    from minibert.tasks.embeddings import SentenceEncoder

    vectors = SentenceEncoder.from_pretrained(args.model).encode(args.text, batch_size=args.batch_size,
                                                                 normalize_embeddings=args.normalize)
    if args.output:
        np.save(args.output, vectors)
        print(f"saved {vectors.shape[0]} embeddings of {vectors.shape[1]} dimensions to {args.output}")
        return 0
    for text, vector in zip(args.text, vectors):
        print(json.dumps({"text": text, "embedding": vector.tolist()}))
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


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """--help: each option's line ends with its default, unless it has none (None, a flag's False)."""

    def _get_help_string(self, action):
        if action.default is None or action.default is False:
            return action.help
        return super()._get_help_string(action)


class Parser(argparse.ArgumentParser):
    """The parser of `minibert` and of every subcommand (argparse makes the subparsers of this class)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        """A bad argument: one line on stderr (not the whole usage), exit status 2."""
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def option(p, flag: str, defaults, field: str, help: str, **kwargs) -> None:
    """An option whose default and valid range are those of the dataclass field `field` of `defaults` (a config
    instance): the one source of both, so the CLI and the library never disagree."""
    valid = range_of(defaults, field)
    p.add_argument(flag, default=getattr(defaults, field), type=valid.parse if valid else None,
                   help=f"{help}; {valid}" if valid else help, **kwargs)


def add_corpus_arguments(p, defaults, *, mask_help: str, attention_help: str) -> None:
    """The text, the examples and their masking: what pretraining and distillation share (`defaults`: the
    command's PretrainConfig or DistillConfig)."""
    p.add_argument("--corpus", nargs="+", help="text files or folders, prepared into OUTPUT/data first (default: the "
                                               "embedded Python docstrings); see `minibert prepare` for other formats")
    p.add_argument("--data", help="a corpus prepared by `minibert prepare` (instead of --corpus)")
    option(p, "--workers", defaults, "workers", "processes that prepare --corpus (0: every core)")
    option(p, "--text-field", defaults, "text_field", "the text's field when --corpus is JSON Lines or Parquet")
    option(p, "--seq-len", defaults, "seq_len", "tokens per example")
    option(p, "--batch-size", defaults, "batch_size", "examples per micro-batch (over every device)")
    option(p, "--mask-rate", defaults, "mask_rate", mask_help)
    p.add_argument("--whole-word", action="store_true", help="mask every piece of a chosen word")
    option(p, "--attention", defaults, "attention", attention_help, choices=["auto", "reference", "fused"])


def add_training_arguments(p, defaults, *, steps_help: str = "optimizer updates", warmup_help: str = "warmup updates",
                           eval_help: str = "micro-steps between held-out evaluations",
                           save_help: str = "micro-steps between resumable (orbax) checkpoints") -> None:
    """The options `train_config` reads (the training loop's), plus the compute dtype; their defaults are the
    command's config's (`defaults`: a PretrainConfig, DistillConfig or FinetuneConfig instance)."""
    t = defaults.train
    option(p, "--steps", t, "steps", steps_help)
    option(p, "--lr", t, "learning_rate", "peak learning rate")
    option(p, "--warmup", t, "warmup_steps", warmup_help)
    option(p, "--decay", t, "decay", "learning-rate decay after the warmup", choices=["linear", "cosine"])
    option(p, "--weight-decay", t, "weight_decay", "AdamW's decoupled weight decay")
    option(p, "--grad-accumulation", t, "grad_accumulation", "micro-batches per optimizer update")
    option(p, "--dtype", defaults, "dtype", "compute dtype (parameters stay float32)", choices=["float32", "bfloat16"])
    option(p, "--seed", t, "seed", "seed of the initialisation, dropout and data order")
    option(p, "--log-every", t, "log_every", "micro-steps between logged records (metrics.jsonl)")
    option(p, "--eval-every", t, "eval_every", eval_help)
    option(p, "--save-every", t, "save_every", save_help)
    option(p, "--output", t, "output_dir", "the output directory")
    p.add_argument("--resume", action="store_true", help="continue from the output directory's last checkpoint")


def version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("minibert")
    except PackageNotFoundError:
        return "(not installed: run from a source tree)"


TOKENIZER_HELP = ("the algorithm of a trained vocabulary: wordpiece (BERT's), bpe (RoBERTa's byte-level BPE) or "
                  "unigram (ALBERT's SentencePiece Unigram)")


def build_parser() -> argparse.ArgumentParser:
    from minibert.training.distill import DistillConfig
    from minibert.training.finetune import FinetuneConfig, evaluate_classifier
    from minibert.training.prepare import TOKENIZERS, PrepareConfig
    from minibert.presets import FAMILIES
    from minibert.training.pretrain import PretrainConfig

    parser = Parser(prog="minibert", description="The BERT family of encoders, from scratch in JAX: prepare a corpus, "
                                                 "pretrain, fine-tune, distil, quantize, run pipelines, check parity.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    commands = parser.add_subparsers(dest="command", required=True)

    from minibert.parity import TOLERANCE, compare

    p = commands.add_parser("parity", help="compare a Hugging Face checkpoint in minibert and in PyTorch, stage by stage")
    p.add_argument("model", help="Hugging Face model directory (config.json + weights)")
    defaults = compare.__kwdefaults__
    p.add_argument("--batch-size", type=AT_LEAST_1.parse, default=defaults["batch_size"], help="rows of the random batch")
    p.add_argument("--seq-len", type=AT_LEAST_1.parse, default=defaults["seq_len"],
                   help="tokens per row (at most the model's max_position_embeddings)")
    p.add_argument("--seed", type=AT_LEAST_0.parse, default=defaults["seed"], help="seed of the random batch")
    p.add_argument("--tolerance", type=POSITIVE.parse, default=TOLERANCE,
                   help="largest max |diff| / max |reference| that passes, at any stage (see minibert/parity.py)")
    p.set_defaults(run=parity)

    p = commands.add_parser("prepare", help="tokenize a corpus once into shards of token ids, for pretrain --data")
    p.add_argument("--corpus", nargs="+", help="text files or folders (.gz too), JSON Lines, Parquet, a datasets "
                                               "save_to_disk folder, hub:PATH for datasets.load_dataset on local "
                                               "files (default: the embedded Python docstrings)")
    p.add_argument("--output", required=True, help="the prepared directory (a killed run continues in it)")
    p.add_argument("--vocab", help="vocab.txt or tokenizer directory (default: train one on a sample of the corpus)")
    defaults = PrepareConfig(corpus=None, output="")
    option(p, "--tokenizer", defaults, "tokenizer", f"{TOKENIZER_HELP} (default: wordpiece)", choices=TOKENIZERS)
    option(p, "--vocab-size", defaults, "vocab_size", "entries of a trained vocabulary")
    option(p, "--vocab-sample", defaults, "vocab_sample_mb", "MB of text a vocabulary is trained on, at most")
    p.add_argument("--cased", action="store_true", help="keep case and accents")
    option(p, "--workers", defaults, "workers", "processes (0: every core)")
    option(p, "--backend", defaults, "backend", "tokenizer implementation: from scratch, or the Rust tokenizers "
                                                "(identical ids)", choices=["minibert", "tokenizers"])
    option(p, "--text-field", defaults, "text_field", "the text's field in JSON Lines, Parquet and datasets")
    p.add_argument("--strict", action="store_true", help="records without text and undecodable lines are errors "
                                                         "(default: skipped and counted)")
    option(p, "--seed", defaults, "seed", "seed of the vocabulary's sample")
    p.set_defaults(run=prepare)

    p = commands.add_parser("pretrain", help="pretrain a model (default: a tiny ModernBERT on Python's docstrings)")
    defaults = PretrainConfig()
    option(p, "--family", defaults, "family", f"{', '.join(FAMILIES)} (flex: any combination of the ideas, "
                                              f"chosen with --set or --config)")
    option(p, "--size", defaults, "size", "tiny, mini, small, base, or a paper config (see presets.py)")
    p.add_argument("--objective", help="mlm, mlm+nsp (bert, mobilebert, flex), mlm+sop (albert, flex), rtd (electra, "
                                              "deberta, flex); "
                                              "default: the family's own")
    p.add_argument("--config", help="a JSON file of model config values over the size's (a saved config.json works)")
    p.add_argument("--config-overrides", "--set", help="model config values over the size's (and --config's), as "
                                                       "transformers' run_mlm.py takes them: "
                                                       "'num_hidden_layers=4,hidden_dropout_prob=0.2'")
    p.add_argument("--vocab", help="vocab.txt or tokenizer directory (default: train one on the corpus)")
    option(p, "--tokenizer", defaults, "tokenizer", f"{TOKENIZER_HELP} (default: the family's: bpe for roberta, "
                                                    f"wordpiece for the others)", choices=TOKENIZERS)
    option(p, "--vocab-size", defaults, "vocab_size", "entries of a trained vocabulary")
    p.add_argument("--cased", action="store_true", help="keep case and accents (default: uncased)")
    add_corpus_arguments(p, defaults, mask_help="masking rate (default: the family's, 0.15; MosaicBERT and "
                                                "ModernBERT 0.3); held-out rows are always masked at 0.15",
                         attention_help="attention implementation (auto: fused jax.nn.dot_product_attention on "
                                        "GPU/TPU, the reference einsum on CPU)")
    add_training_arguments(p, defaults)
    p.add_argument("--demo", nargs="*", help="fill-mask sentences to print at the end")
    p.set_defaults(run=pretrain)

    p = commands.add_parser("distill", help="distil a pretrained masked LM teacher into a smaller student "
                                            "(MobileBERT's layer-wise transfer, then pretraining distillation); "
                                            "for task distillation see finetune --teacher")
    p.add_argument("--teacher", required=True, help="the teacher: a pretrained masked LM directory with its tokenizer")
    defaults = DistillConfig()
    p.add_argument("--recipe", choices=["mobilebert", "distilbert"], default=defaults.recipe,
                   help="mobilebert: a student preset (--family, --size), layer-wise transfer, then MLM + KD; "
                        "distilbert: half the layers of a BERT teacher, initialised from every other one, trained "
                        "on KD + MLM + cosine loss (default: %(default)s)")
    option(p, "--family", defaults, "family", "the student's family")
    option(p, "--size", defaults, "size", "the student's size preset (see presets.py)")
    option(p, "--transfer-steps", defaults, "transfer_steps",
           "updates of layer-wise feature-map and attention transfer before pretraining distillation")
    p.add_argument("--progressive", action="store_true",
                   help="transfer one layer at a time, the layers below frozen (MobileBERT §3.6)")
    option(p, "--alpha", defaults, "alpha", "weight of the MLM loss against the KD loss")
    option(p, "--temperature", defaults, "temperature", "softmax temperature of the KD loss")
    add_corpus_arguments(p, defaults, mask_help="masking rate (default: the student family's)",
                         attention_help="attention implementation (the transfer stages record maps on the reference "
                                        "path)")
    add_training_arguments(p, defaults, steps_help="updates of pretraining distillation (MLM + KD)",
                           warmup_help="warmup updates (at most a tenth of each stage)",
                           eval_help="updates between held-out evaluations of the student")
    p.set_defaults(run=distill)

    p = commands.add_parser("fill-mask", help="top-k predictions for every [MASK] in a text")
    p.add_argument("--model", required=True, help="a model directory with its tokenizer files")
    p.add_argument("--top-k", type=AT_LEAST_1.parse, default=5, help="predictions per mask")
    p.add_argument("text", nargs="+", help="texts with [MASK] tokens")
    p.set_defaults(run=fill_mask_command)

    p = commands.add_parser("assignment", help="course mode: the student version of minibert and its autograder")
    steps = p.add_subparsers(dest="step", required=True)
    p = steps.add_parser("make", help="write OUT_DIR/minibert with the graded functions stubbed, and OUT_DIR/autograder")
    p.add_argument("out_dir", help="where to write the course (created)")
    p.add_argument("--solution", action="store_true", help="keep the reference bodies (to check the autograder)")
    p.set_defaults(run=assignment_make)

    p = commands.add_parser("finetune", help="fine-tune a model on GLUE-style TSV, CoNLL NER or SQuAD; keep the best")
    p.add_argument("--task", required=True, choices=["glue", "ner", "squad"],
                   help="glue: sequence classification, ner: token classification, squad: question answering")
    p.add_argument("--model", required=True, help="Hugging Face model directory with its tokenizer (pretrained or fine-tuned)")
    p.add_argument("--train", required=True, help="training file: TSV with a header, CoNLL, or SQuAD JSON (.json/.zip)")
    p.add_argument("--eval", help="dev file, scored at every evaluation; the best model is kept")
    defaults = FinetuneConfig()
    option(p, "--max-length", defaults, "max_length", "tokens per row (default 128; squad 384)")
    option(p, "--batch-size", defaults, "batch_size", "training examples per micro-batch")
    option(p, "--eval-batch-size", defaults, "eval_batch_size", "dev examples per forward pass")
    option(p, "--epochs", defaults, "epochs", "passes over the training examples (unless --steps)")
    option(p, "--warmup-ratio", defaults, "warmup_ratio", "warmup as a fraction of the steps (unless --warmup)")
    option(p, "--train-limit", defaults, "train_limit", "train on a seeded random subset of this many examples")
    option(p, "--eval-limit", defaults, "eval_limit", "score only the first examples of the dev file")
    option(p, "--doc-stride", defaults, "doc_stride", "squad: step between context windows, in tokens")
    option(p, "--max-query-length", defaults, "max_query_length", "squad: question tokens kept")
    option(p, "--max-answer-length", defaults, "max_answer_length", "squad: tokens of a predicted answer, at most")
    add_training_arguments(p, defaults, steps_help="optimizer updates (instead of --epochs)",
                           warmup_help="warmup steps (instead of --warmup-ratio)",
                           eval_help="steps between dev evaluations (a multiple of --log-every)",
                           save_help="steps between resumable (orbax) checkpoints")
    p.set_defaults(steps=None, warmup=None)         # unset: --epochs and --warmup-ratio decide them
    p.add_argument("--teacher", help="task distillation: a fine-tuned model of the same task, labels and vocabulary "
                                     "whose soft labels the model learns")
    option(p, "--alpha", defaults, "alpha", "with --teacher: weight of the task loss")
    option(p, "--temperature", defaults, "temperature", "with --teacher: softmax temperature")
    p.set_defaults(run=finetune)

    p = commands.add_parser("text-classification", help="label texts with a sequence-classification model")
    p.add_argument("--model", required=True, help="a fine-tuned model directory with its tokenizer files")
    p.add_argument("--top-k", type=AT_LEAST_1.parse, default=1, help="labels per text, best first")
    p.add_argument("text", nargs="+", help="texts to label")
    p.set_defaults(run=text_classification_command)

    p = commands.add_parser("token-classification", help="named entities in texts, with a token-classification model")
    p.add_argument("--model", required=True, help="a fine-tuned model directory with its tokenizer files")
    p.add_argument("--aggregation", default="simple", choices=["none", "simple", "first", "average", "max"],
                   help="how word pieces group into entities (Hugging Face's aggregation_strategy)")
    p.add_argument("text", nargs="+", help="texts to tag")
    p.set_defaults(run=token_classification_command)

    p = commands.add_parser("question-answering", help="the answer to a question, extracted from a context")
    p.add_argument("--model", required=True, help="a fine-tuned model directory with its tokenizer files")
    p.add_argument("--context", required=True, help="the text that holds the answer")
    p.add_argument("--top-k", type=AT_LEAST_1.parse, default=1, help="answers, best first")
    p.add_argument("question", help="the question")
    p.set_defaults(run=question_answering_command)

    p = commands.add_parser("feature-extraction", help="each text's token vectors (the model's first output), "
                                                       "as JSON lines")
    p.add_argument("--model", required=True, help="a model directory with its tokenizer files")
    p.add_argument("--max-length", type=AT_LEAST_1.parse, help="tokens kept per text (default: "
                                                                 "max_position_embeddings)")
    p.add_argument("text", nargs="+", help="texts to encode")
    p.set_defaults(run=feature_extraction_command)

    p = commands.add_parser("sentence-embedding", help="one vector per text from a sentence-transformers directory "
                                                       "(modules.json: pooling, normalization), as JSON lines")
    p.add_argument("--model", required=True, help="a sentence-transformers directory (e.g. all-MiniLM-L6-v2)")
    p.add_argument("--batch-size", type=AT_LEAST_1.parse, default=32, help="texts per forward pass")
    p.add_argument("--normalize", action="store_true", help="unit-length vectors even without a Normalize module")
    p.add_argument("--output", help="save the (n, dim) float32 array to this .npy file instead of printing")
    p.add_argument("text", nargs="+", help="texts to embed")
    p.set_defaults(run=sentence_embedding_command)

    p = commands.add_parser("quantize", help="int8 weights (per-channel, symmetric) for a smaller file; "
                                             "optionally score float and int8 on a dev set")
    p.add_argument("model", help="Hugging Face model directory (config.json + weights)")
    p.add_argument("out_dir", help="where to write the int8 directory (loads with minibert.from_pretrained)")
    p.add_argument("--eval", help="GLUE-style dev TSV: score the float and the int8 sequence classifier on it")
    scoring = evaluate_classifier.__kwdefaults__
    p.add_argument("--eval-limit", type=AT_LEAST_1.parse, help="score only the first examples of the dev file")
    p.add_argument("--max-length", type=Range(8).parse, default=scoring["max_length"], help="tokens per row")
    p.add_argument("--eval-batch-size", type=AT_LEAST_1.parse, default=scoring["batch_size"],
                   help="dev examples per forward pass")
    p.set_defaults(run=quantize_command)
    return parser


def main(argv=None) -> int:
    from minibert.compilation_cache import enable_compilation_cache

    args = build_parser().parse_args(argv)
    enable_compilation_cache()      # every command compiles a shape once per machine, not once per run
    return args.run(args)


TRACEBACK_VARIABLE = "MINIBERT_TRACEBACK"


def run(argv=None) -> int:
    """The console entry point: `main`, with every error ending in one line on stderr, never a traceback.

    exit 2   bad arguments (argparse: "argument --batch-size: must be ≥ 1, got 0")
    exit 1   bad input found later: a missing or malformed file, a key a config lacks, a missing optional
             dependency (ImportError: torch for parity), a training run that diverges (FloatingPointError)
    exit 130 interrupted (Ctrl-C); a training run resumes from its last checkpoint with --resume
    exit 1   anything else is a bug in minibert: one line naming the exception, and how to see its traceback —
             set MINIBERT_TRACEBACK=1, which lets every error (bad input too) raise with its traceback.
    """
    import os

    from minibert.training.prepare import PrepareError

    if os.environ.get(TRACEBACK_VARIABLE):
        return main(argv)
    try:
        return main(argv)
    except KeyboardInterrupt:
        print("minibert: interrupted", file=sys.stderr)
        return 130
    except (ValueError, OSError, KeyError, ImportError, PrepareError, FloatingPointError) as error:
        # (CorpusError, CheckpointError and json.JSONDecodeError are ValueErrors; FileNotFoundError an OSError)
        message = f"missing key {error}" if isinstance(error, KeyError) else str(error)
        print(f"minibert: error: {message}", file=sys.stderr)
        return 1
    except Exception as error:                                  # a bug: say so, and how to see where
        print(f"minibert: internal error: {type(error).__name__}: {error} (a bug in minibert; set "
              f"{TRACEBACK_VARIABLE}=1 for the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(run())
