"""Pretraining at corpus scale: `minibert prepare` (tokenize once into shards) and `minibert pretrain --data`.

    python bench/prepare_scale.py [--sizes 40M 400M 4G] [--workdir /tmp/minibert-scale] [--time-limit SECONDS]
    python bench/prepare_scale.py --smoke          # 2 MB and 8 MB corpora, 5 steps: checks the script in minutes
    python bench/prepare_scale.py --generate-only  # only the corpora and the vocabulary (4 GB: about 20 s)
    python bench/prepare_scale.py --pretrain-from corpus --sizes 2M 8M   # the in-memory path, no prepare

1. Corpora. The sentences of the shared texts (WikiText-2 valid+test without its ` = Heading = ` lines, the
   Gutenberg novels, Tiny Shakespeare without its speaker tags; sentences of fewer than 3 words dropped) are
   drawn with replacement by `numpy.random.default_rng(seed)` into paragraphs of 3–8 sentences (one per line)
   and documents of 10–40 paragraphs (separated by a blank line), until the next document would pass the
   size: each corpus is a prefix of the larger ones. They are written to `--workdir` (never the repository) and
   reused while their `.json` sidecar matches (size, seed, generator version).
2. Vocabulary. One fixed vocabulary for every run (`--vocab`, or a WordPiece vocabulary of `--vocab-size`
   trained once by `WordPieceTokenizer.train` on the first `--vocab-sample` MB of the smallest corpus, saved
   in the workdir), so that `prepare` measures tokenization, not vocabulary training.
3. Runs, each a fresh subprocess into a fresh output folder, for every size:
   `minibert prepare --corpus C --output D --vocab V --workers 1`, the same with `--workers 2`, then
   `minibert pretrain --data D --size tiny --seq-len 128 --batch-size 32 --steps 20 --log-every 1
   --eval-every 1000 --output R` on the 2-worker shards.
   Every 0.1 s the sampler sums the RSS of the process tree (the command and all its descendants); it reports
   that sum's peak, the same for anonymous memory only (RSS minus file-backed and shared pages: memory-mapped
   shards or corpus pages do not count), and the largest single process's peak (its VmHWM, read with every
   sample: spikes between samples count; the tree's peak is at least that). The sums count pages shared between
   processes (libraries, copy-on-write pages of forked workers) once per process: an upper bound. Wall time
   from start to exit; CPU time of the tree (user + system of the reaped processes, `RUSAGE_CHILDREN`;
   incomplete for a killed run); for `pretrain`, the time from start until
   `metrics.jsonl` holds its first line (the first logged step: imports, data start-up and compilation).
   MB/s = corpus bytes (10^6) / wall time. `--time-limit` kills a `prepare` run that runs longer; its row is
   then partial.

Prints Markdown tables for bench/RESULTS.md (date, machine, versions, the exact command) and writes the raw
results to `<workdir>/results.json` (rewritten after every run). `--pretrain-from corpus` measures the
in-memory path instead (`pretrain --corpus FILE --vocab V`, no `prepare`): it runs before `prepare` exists
and gives the before-numbers.
"""

from __future__ import annotations

import sys
from pathlib import Path

# `bench/` holds a `tokenize.py` that shadows the standard library's (which numpy and jax import): keep this
# folder off the import path, and put the repository on it instead.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE] + [str(_HERE.parent)]

import argparse  # noqa: E402
import datetime  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import re  # noqa: E402
import resource  # noqa: E402
import shlex  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

try:
    import psutil  # noqa: E402
except ImportError:  # pragma: no cover
    sys.exit("bench/prepare_scale.py needs psutil: pip install psutil")

ROOT = _HERE.parent
GENERATOR_VERSION = 1                    # bump when the generated text would change: cached corpora are redone
CHUNK_BYTES = 64 << 20                   # text generated and written per chunk
SAMPLE_INTERVAL = 0.1                    # seconds between RSS samples
HEADING = re.compile(r"^\s*(?:= )+.*?(?: =)+\s*$")           # WikiText: ` = Title = `, ` = = Section = = `
SPEAKER = re.compile(r"^[A-Z][A-Za-z' ]{0,40}:$")            # Shakespeare: `First Citizen:`
MB = 1e6


# ---------------------------------------------------------------- corpus generation

def parse_size(text: str) -> int:
    """'40M' → 40·10^6 bytes, '4G' → 4·10^9, '512K', or a plain number of bytes."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([KMG]?)B?", text.strip().upper())
    if not match:
        raise argparse.ArgumentTypeError(f"size {text!r}: expected e.g. 40M, 400M, 4G")
    return int(float(match.group(1)) * {"": 1, "K": 1e3, "M": 1e6, "G": 1e9}[match.group(2)])


def size_label(n: int) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= scale and n % int(scale) == 0:
            return f"{n // int(scale)}{unit}"
    return str(n)


def source_files(shared: Path) -> list[Path]:
    files = (sorted((shared / "wikitext-2-raw").glob("*.raw"))
             + sorted(p for p in (shared / "gutenberg").glob("*") if p.is_file() and p.name != "README")
             + [shared / "tinyshakespeare" / "input.txt"])
    missing = [str(f) for f in files if not f.is_file()]
    if missing or not files:
        sys.exit(f"shared texts not found under {shared}: {', '.join(missing) or 'none'} (see --shared)")
    return files


def read_sentences(files: list[Path]) -> list[str]:
    """Every sentence of the texts: WikiText lines are paragraphs (headings dropped); elsewhere a paragraph is a
    blank-line-separated block of wrapped lines (Shakespeare's speaker tags dropped)."""
    from minibert.training.corpus import split_sentences

    sentences = []
    for file in files:
        raw = file.read_bytes()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:                             # one Gutenberg novel is Latin-1
            text = raw.decode("latin-1")
        text = text.replace("\r", "")
        if file.suffix == ".raw":
            paragraphs = [line for line in text.split("\n") if line.strip() and not HEADING.match(line)]
        else:
            paragraphs = [" ".join(line for line in block.split("\n") if not SPEAKER.match(line.strip()))
                          for block in re.split(r"\n\s*\n", text)]
        for paragraph in paragraphs:
            sentences += [s for s in split_sentences(" ".join(paragraph.split())) if len(s.split()) >= 3]
    return sentences


def generate(path: Path, target: int, sentences: list[str], seed: int, sources: list[str]) -> dict:
    """Write a corpus of at most `target` bytes (whole documents) to `path`, or reuse a matching one.
    Vectorised: every sentence is encoded once in three variants (followed by ' ', by '\\n' at a paragraph's
    end, by '\\n\\n' at a document's end); a chunk of documents is drawn as arrays of variant indices and
    written with one `b"".join`."""
    meta_path = path.with_suffix(".json")
    wanted = dict(target_bytes=target, seed=seed, generator_version=GENERATOR_VERSION, sources=sources)
    if path.exists() and meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if all(meta.get(k) == v for k, v in wanted.items()) and path.stat().st_size == meta.get("bytes"):
            return dict(meta, cached=True)
    start = time.perf_counter()
    encoded = [s.encode("utf-8") for s in sentences]
    variants = np.empty(3 * len(encoded), dtype=object)
    variants[0::3] = [e + b" " for e in encoded]
    variants[1::3] = [e + b"\n" for e in encoded]
    variants[2::3] = [e + b"\n\n" for e in encoded]
    lengths = np.fromiter((len(v) for v in variants), np.int64, len(variants))
    mean_document = 25 * 5.5 * lengths[0::3].mean()            # expected bytes of a document
    documents_per_chunk = max(1, int(CHUNK_BYTES / mean_document))

    rng = np.random.default_rng(seed)
    written = documents = paragraphs = drawn = 0
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        while True:
            n_paragraphs = rng.integers(10, 41, documents_per_chunk)            # paragraphs per document
            n_sentences = rng.integers(3, 9, int(n_paragraphs.sum()))          # sentences per paragraph
            items = 3 * rng.integers(0, len(encoded), int(n_sentences.sum()))  # with replacement, shuffled
            paragraph_end = np.cumsum(n_sentences) - 1
            items[paragraph_end] += 1
            document_end = paragraph_end[np.cumsum(n_paragraphs) - 1]
            items[document_end] += 1                                             # now 2: '\n\n'
            ends = np.cumsum(lengths[items])[document_end]                      # bytes at each document's end
            fit = int(np.searchsorted(ends, target - written, side="right"))    # whole documents that fit
            if fit < documents_per_chunk:
                if fit == 0:
                    break
                items = items[:document_end[fit - 1] + 1]
                n_paragraphs = n_paragraphs[:fit]
            f.write(b"".join(variants[items].tolist()))
            written += int(lengths[items].sum())
            documents += len(n_paragraphs)
            paragraphs += int(n_paragraphs.sum())
            drawn += len(items)
            if fit < documents_per_chunk:
                break
    if written == 0:
        tmp.unlink()
        sys.exit(f"size {target} bytes is smaller than one document")
    tmp.replace(path)
    seconds = time.perf_counter() - start
    meta = dict(wanted, path=str(path), bytes=written, documents=documents, paragraphs=paragraphs,
                sentences=drawn, distinct_sentences=len(encoded), generation_s=round(seconds, 2))
    meta_path.write_text(json.dumps(meta, indent=1) + "\n")
    return dict(meta, cached=False)


def train_vocab(corpus: Path, out: Path, vocab_size: int, sample_mb: float) -> dict:
    """One WordPiece vocabulary (uncased) from the first `sample_mb` MB of `corpus`, saved to `out` (reused)."""
    from minibert.tokenization.tokenizer import WordPieceTokenizer

    meta_path = out / "bench.json"
    wanted = dict(corpus=str(corpus), vocab_size=vocab_size, sample_mb=sample_mb)
    if (out / "vocab.txt").exists() and meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if all(meta.get(k) == v for k, v in wanted.items()):
            return dict(meta, cached=True)
    start = time.perf_counter()
    with open(corpus, "rb") as f:
        sample = f.read(int(sample_mb * MB)).decode("utf-8", errors="ignore")
    tokenizer = WordPieceTokenizer.train(iter(sample.splitlines()), vocab_size)
    tokenizer.save_pretrained(out)
    meta = dict(wanted, tokens=len(tokenizer), train_s=round(time.perf_counter() - start, 1))
    meta_path.write_text(json.dumps(meta, indent=1) + "\n")
    return dict(meta, cached=False)


# ---------------------------------------------------------------- measuring a command

def high_water(pid: int) -> int:
    """The process's peak RSS so far (VmHWM, bytes): catches spikes between two samples."""
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def tree_memory(root: psutil.Process) -> tuple[int, int, int, int]:
    """(RSS summed over the tree, anonymous RSS summed, largest process's peak RSS so far, processes) now."""
    try:
        processes = [root] + root.children(recursive=True)
    except psutil.Error:
        return 0, 0, 0, 0
    rss = anon = largest = count = 0
    for p in processes:
        try:
            m = p.memory_info()
        except psutil.Error:
            continue
        rss += m.rss
        anon += m.rss - getattr(m, "shared", 0)
        largest = max(largest, m.rss, high_water(p.pid))
        count += 1
    return rss, anon, largest, count


def first_line_written(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            return b"\n" in f.read(1 << 16)
    except OSError:
        return False


def signal_tree(processes: list[psutil.Process], kill: bool = False) -> None:
    """SIGTERM (or SIGKILL) to the command we started and its descendants, by pid (`measure`'s `wait4` reaps
    the command; its descendants are reaped by their parent, or by init once orphaned)."""
    for p in processes:
        try:
            p.kill() if kill else p.terminate()
        except psutil.Error:
            pass


def measure(cmd: list[str], log: Path, *, first_line: Path | None = None, time_limit: float | None = None) -> dict:
    """Run `cmd` in the log's folder (stdout and stderr to `log`), sampling its process tree's memory every
    SAMPLE_INTERVAL. (Not in the repository: `python -m minibert` would import the checkout in the current
    folder before PYTHONPATH's.)"""
    log.parent.mkdir(parents=True, exist_ok=True)
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    load_before = os.getloadavg()[0]
    peak = dict(rss=0, anon=0, largest=0, processes=0)
    trace = []                                 # (second, tree RSS MB) each second's maximum
    first_step_s = None
    killed, killed_at, tree = False, None, []
    with open(log, "wb") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=log.parent)
        root = psutil.Process(proc.pid)
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            now = time.perf_counter() - start
            if pid:
                proc.returncode = os.waitstatus_to_exitcode(status)
                break
            rss, anon, largest, count = tree_memory(root)
            for key, value in zip(("rss", "anon", "largest", "processes"), (rss, anon, largest, count)):
                peak[key] = max(peak[key], value)
            second = int(now)
            if trace and trace[-1][0] == second:
                trace[-1][1] = max(trace[-1][1], round(rss / MB))
            else:
                trace.append([second, round(rss / MB)])
            if first_line is not None and first_step_s is None and first_line_written(first_line):
                first_step_s = now
            if time_limit is not None and now > time_limit:
                if not killed:                 # terminate the tree; kill what is left 10 s later
                    killed, killed_at = True, now
                    try:
                        tree = root.children(recursive=True) + [root]
                    except psutil.Error:
                        tree = [root]
                    signal_tree(tree)
                elif killed_at is not None and now > killed_at + 10:
                    signal_tree(tree, kill=True)
                    killed_at = None
            time.sleep(SAMPLE_INTERVAL)
    wall = time.perf_counter() - start
    if first_line is not None and first_step_s is None and first_line_written(first_line):
        first_step_s = wall                    # the whole run fitted between two samples
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    return dict(command=cmd, log=str(log), rc=proc.returncode, killed=killed, wall_s=round(wall, 2),
                load_average_before=round(load_before, 1), load_average_after=round(os.getloadavg()[0], 1),
                # a single process's VmHWM bounds the tree's peak from below (a spike between two samples)
                cpu_s=round(cpu, 1), peak_tree_rss_mb=round(max(peak["rss"], peak["largest"]) / MB, 1),
                peak_tree_anon_mb=round(peak["anon"] / MB, 1),
                peak_largest_mb=round(peak["largest"] / MB, 1),
                # the kernel's: also counts this script's own RSS, copied at the fork before exec (Linux: KiB)
                ru_maxrss_mb=round(usage.ru_maxrss * 1024 / MB, 1),
                max_processes=peak["processes"],
                first_step_s=None if first_step_s is None else round(first_step_s, 2), rss_trace_mb=trace)


def log_tail(path: str, lines: int = 15) -> str:
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


# ---------------------------------------------------------------- the prepared output

def manifest_counts(directory: Path) -> dict:
    """Documents and tokens from `manifest.json` (whatever the key names that hold them), or {}."""
    try:
        manifest = json.loads((directory / "manifest.json").read_text())
    except (OSError, ValueError):
        return {}
    flat = {}

    def walk(node, prefix=""):
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, f"{prefix}{k}.")
        elif isinstance(node, (int, float)) and not isinstance(node, bool):
            flat[prefix[:-1]] = node

    walk(manifest)
    out = {}
    for what in ("document", "token", "example", "shard", "byte"):
        keys = sorted((k for k in flat if what in k.rsplit(".", 1)[-1].lower() and "." not in k), key=len) \
            or sorted((k for k in flat if what in k.rsplit(".", 1)[-1].lower()), key=len)
        if keys:
            out[what + "s"] = flat[keys[0]]
    return out


def bytes_done(directory: Path) -> int | None:
    """Input bytes the finished shards account for, from their per-shard json files (if they say it)."""
    total, found = 0, False
    for file in directory.rglob("*.json"):
        if file.name in ("manifest.json", "plan.json") or file.parent.name == "tokenizer":
            continue
        try:
            data = json.loads(file.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(data, dict):
            for key in ("input_bytes", "bytes_in", "corpus_bytes", "text_bytes", "bytes"):
                if isinstance(data.get(key), int):
                    total, found = total + data[key], True
                    break
    return total if found else None


def folder_mb(directory: Path) -> float:
    return round(sum(f.stat().st_size for f in directory.rglob("*") if f.is_file()) / MB, 1)


# ---------------------------------------------------------------- the report

def machine() -> str:
    model = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = psutil.virtual_memory().total / 2**30
    return f"CPU: {os.cpu_count()} cores of an {model}, {memory:.0f} GiB RAM"


def versions() -> str:
    import importlib.metadata as md

    parts = [f"Python {platform.python_version()}"]
    for name in ("jax", "flax", "numpy", "tokenizers"):
        try:
            parts.append(f"{name} {md.version(name)}")
        except md.PackageNotFoundError:
            pass
    try:
        rev = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True).stdout.strip()
        parts.append(f"minibert {rev}{' + uncommitted changes' if dirty else ''}")
    except (OSError, subprocess.CalledProcessError):
        pass
    return ", ".join(parts)


def fmt(value, spec=",.0f", missing="–"):
    return missing if value is None else format(value, spec)


def mb_per_s(run: dict | None, corpus_bytes: int) -> float | None:
    if not run or run.get("skipped") or run["rc"] != 0 and not run["killed"]:
        return None
    if run["killed"]:
        done = run.get("bytes_done")
        return None if done is None else done / MB / run["wall_s"]
    return corpus_bytes / MB / run["wall_s"]


def run_cell(run: dict | None, corpus_bytes: int) -> tuple[str, str, str]:
    """(wall, MB/s, peak RSS) cells of a prepare run."""
    if not run or run.get("skipped"):
        return "–", "–", "–"
    if run["rc"] != 0 and not run["killed"]:
        return f"failed (rc {run['rc']})", "–", fmt(run["peak_tree_rss_mb"]) + " MB"
    wall = f"{run['wall_s']:,.1f} s" + (f" (killed: partial)" if run["killed"] else "")
    return wall, fmt(mb_per_s(run, corpus_bytes), ".2f"), fmt(run["peak_tree_rss_mb"]) + " MB"


def report(results: dict, workers: list[int]) -> str:
    lines = [f"{results['date']} · {results['machine']} (load average {results['load_average']}) · "
             f"{results['versions']} · command:", "", "    " + results["command"], ""]
    corpora = results["corpora"]
    described = ", ".join(f"{c['label']} = {c['bytes'] / MB:,.1f} MB, {c['documents']:,} documents" for c in corpora)
    lines += [f"Corpora: {described} "
              f"(seed {results['seed']}, sentences drawn from {corpora[0]['distinct_sentences']:,} distinct ones); "
              f"vocabulary: {results['vocab']['path']} ({results['vocab'].get('tokens', '?')} tokens). "
              f"RSS: peak over 0.1 s samples of the process tree's summed RSS; `largest`: the largest single "
              f"process's peak (VmHWM).", ""]
    w1, w2 = (list(workers) + [None])[:2]
    head = ["corpus", "MB", "documents", "tokens"]
    head += [f"prepare {w1}w wall", f"{w1}w MB/s", f"{w1}w peak RSS"]
    if w2:
        head += [f"prepare {w2}w wall", f"{w2}w MB/s", f"{w2}w peak RSS", "speed-up"]
    head += ["pretrain peak RSS", "largest", "first step", "pretrain wall"]
    lines += ["| " + " | ".join(head) + " |",
              "|" + "|".join("---" if i == 0 else "---:" for i in range(len(head))) + "|"]
    for row in results["rows"]:
        counts = row.get("counts", {})
        cells = [row["label"], f"{row['bytes'] / MB:,.1f}", fmt(counts.get("documents")), fmt(counts.get("tokens"))]
        runs = row.get("prepare", {})
        cells += run_cell(runs.get(str(w1)), row["bytes"])
        if w2:
            cells += run_cell(runs.get(str(w2)), row["bytes"])
            a, b = mb_per_s(runs.get(str(w1)), row["bytes"]), mb_per_s(runs.get(str(w2)), row["bytes"])
            cells.append(f"{b / a:.2f}×" if a and b else "–")
        p = row.get("pretrain")
        if p and not p.get("skipped"):
            ok = p["rc"] == 0
            cells += [fmt(p["peak_tree_rss_mb"]) + " MB" + ("" if ok else f" (failed, rc {p['rc']})"),
                      fmt(p["peak_largest_mb"]) + " MB", fmt(p["first_step_s"], ".1f") + " s",
                      f"{p['wall_s']:.1f} s"]
        else:
            cells += ["–" if not p else p["skipped"], "–", "–", "–"]
        lines.append("| " + " | ".join(cells) + " |")

    lines += ["", "Every run (CPU = user + system seconds of the process tree; anon = RSS without file-backed and "
              "shared pages):", "",
              "| corpus | run | rc | wall | CPU | CPU / wall | MB / CPU-s | load before → after | peak RSS tree "
              "| anon | largest | processes | output MB |",
              "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for row in results["rows"]:
        named = [(f"prepare {w}w", r) for w, r in row.get("prepare", {}).items()] + [("pretrain", row.get("pretrain"))]
        for name, r in named:
            if not r or r.get("skipped"):
                continue
            per_cpu = (f"{row['bytes'] / MB / r['cpu_s']:.2f}" if name.startswith("prepare") and r["rc"] == 0
                       and not r["killed"] and r["cpu_s"] > 0 else "–")
            lines.append(f"| {row['label']} | {name} | {r['rc']}{' (killed)' if r['killed'] else ''} | "
                         f"{r['wall_s']:,.1f} s | {r['cpu_s']:,.1f} s | {r['cpu_s'] / max(r['wall_s'], 1e-9):.2f} | "
                         f"{per_cpu} | {r['load_average_before']:.1f} → {r['load_average_after']:.1f} | "
                         f"{fmt(r['peak_tree_rss_mb'])} MB | {fmt(r['peak_tree_anon_mb'])} MB | "
                         f"{fmt(r['peak_largest_mb'])} MB | {r['max_processes']} | {fmt(r.get('output_mb'), ',.1f')} |")

    lines += ["", "Targets:"]
    pre = [r["pretrain"] for r in results["rows"] if r.get("pretrain") and not r["pretrain"].get("skipped")
           and r["pretrain"]["rc"] == 0]
    if len(pre) >= 2:
        peaks, anon = [p["peak_tree_rss_mb"] for p in pre], [p["peak_tree_anon_mb"] for p in pre]
        mean = sum(peaks) / len(peaks)
        lines.append(f"- pretrain peak RSS across sizes: max/min {max(peaks) / min(peaks):.3f}, largest deviation "
                     f"from the mean {max(abs(p - mean) for p in peaks) / mean:.1%} (target ±15%); anon only: max/min "
                     f"{max(anon) / min(anon):.3f}")
    if pre:
        top = max(p["peak_tree_rss_mb"] for p in pre)
        lines.append(f"- pretrain peak RSS < 2 GB ({results['pretrain_size']}): largest {top:,.0f} MB = "
                     f"{top * MB / 2**30:.2f} GiB ({'met' if top < 2000 else 'NOT met'} in decimal GB, "
                     f"{'met' if top * MB < 2 * 2**30 else 'NOT met'} in GiB); anon only: "
                     f"{max(p['peak_tree_anon_mb'] for p in pre):,.0f} MB")
    for w in workers:
        peaks = [r["prepare"][str(w)]["peak_tree_rss_mb"] for r in results["rows"]
                 if str(w) in r.get("prepare", {}) and not r["prepare"][str(w)].get("skipped")]
        speeds = [mb_per_s(r["prepare"].get(str(w)), r["bytes"]) for r in results["rows"] if r.get("prepare")]
        speeds = [s for s in speeds if s]
        if peaks:
            lines.append(f"- prepare {w}w peak RSS across sizes: {min(peaks):,.0f}–{max(peaks):,.0f} MB "
                         f"(max/min {max(peaks) / max(min(peaks), 1e-9):.2f}: ≈ 1 if bounded by the workers' "
                         f"buffers)")
        if speeds:
            lines.append(f"- prepare {w}w throughput per worker: {min(speeds) / w:.2f}–{max(speeds) / w:.2f} MB/s "
                         f"(target ≥ 2)")
    return "\n".join(lines)


# ---------------------------------------------------------------- main

def cli_has(minibert: list[str], args: list[str], needle: str, cwd: Path) -> tuple[bool, str]:
    out = subprocess.run(minibert + args, capture_output=True, text=True, cwd=cwd)
    text = out.stdout + out.stderr
    return out.returncode == 0 and needle in text, text.strip().splitlines()[-1] if text.strip() else ""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", type=parse_size, help="corpus sizes (default 40M 400M 4G)")
    parser.add_argument("--smoke", action="store_true", help="2M and 8M corpora, 5 pretraining steps")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/minibert-scale"))
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared" / "data",
                        help="folder holding wikitext-2-raw/, gutenberg/, tinyshakespeare/")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--generate-only", action="store_true", help="write the corpora (and vocabulary), stop")
    parser.add_argument("--vocab", type=Path, help="vocab.txt or tokenizer folder for every run "
                        "(default: train one of --vocab-size on the smallest corpus, kept in the workdir)")
    parser.add_argument("--vocab-size", type=int, default=8000)
    parser.add_argument("--vocab-sample", type=float, default=20, help="MB of the smallest corpus to train it on")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="prepare's --workers, one run each")
    parser.add_argument("--time-limit", type=float, help="seconds per prepare run; a longer one is killed (partial)")
    parser.add_argument("--pretrain-from", choices=["data", "corpus"], default="data",
                        help="data: pretrain --data on the prepared shards; corpus: the in-memory path "
                             "(pretrain --corpus FILE --vocab V), no prepare")
    parser.add_argument("--pretrain-only", action="store_true",
                        help="no prepare runs: pretrain on the prepared folders a previous run left in --workdir")
    parser.add_argument("--pretrain-size", default="tiny")
    parser.add_argument("--objective", help="pretrain --objective (default: the family's own)")
    parser.add_argument("--steps", type=int, help="pretraining steps (default 20; --smoke 5)")
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--prepare-args", default="", help="extra arguments for every prepare run (one string)")
    parser.add_argument("--pretrain-args", default="", help="extra arguments for every pretrain run (one string)")
    parser.add_argument("--minibert", help="the command to run (default: this Python's `-m minibert`; it runs in "
                        "the workdir, so PYTHONPATH=OTHER_CHECKOUT measures another checkout)")
    parser.add_argument("--keep", action="store_true", help="keep every prepared folder (default: only the one "
                        "pretrain reads; the others are deleted once measured)")
    args = parser.parse_args()
    sizes = args.sizes or ([parse_size("2M"), parse_size("8M")] if args.smoke else
                           [parse_size(s) for s in ("40M", "400M", "4G")])
    steps = args.steps or (5 if args.smoke else 20)
    workdir = args.workdir.expanduser().resolve()
    if workdir == ROOT or ROOT in workdir.parents:
        sys.exit(f"--workdir {workdir} is inside the repository; choose a folder outside it")
    workdir.mkdir(parents=True, exist_ok=True)
    minibert = shlex.split(args.minibert) if args.minibert else [sys.executable, "-m", "minibert"]

    results = dict(date=datetime.date.today().isoformat(), machine=machine(), versions=versions(),
                   load_average=" ".join(f"{x:.1f}" for x in os.getloadavg()),
                   command=" ".join([f"python bench/{Path(__file__).name}", *map(shlex.quote, sys.argv[1:])]),
                   seed=args.seed, workdir=str(workdir), pretrain_size=args.pretrain_size, steps=steps,
                   pretrain_from=args.pretrain_from, corpora=[], rows=[])
    save = lambda: (workdir / "results.json").write_text(json.dumps(results, indent=1) + "\n")

    # 1. corpora
    files = source_files(args.shared.expanduser().resolve())
    sentences = None
    for size in sorted(sizes):
        path = workdir / f"corpus-{size_label(size)}.txt"
        if sentences is None:
            start = time.perf_counter()
            sentences = read_sentences(files)
            print(f"{len(sentences):,} sentences from {len(files)} files in {time.perf_counter() - start:.1f} s",
                  file=sys.stderr)
        meta = generate(path, size, sentences, args.seed, [str(f.relative_to(args.shared.resolve())) if
                                                           f.is_relative_to(args.shared.resolve()) else str(f)
                                                           for f in files])
        meta["label"] = size_label(size)
        results["corpora"].append(meta)
        print(f"corpus {meta['label']}: {path} {meta['bytes'] / MB:,.1f} MB, {meta['documents']:,} documents, "
              + ("cached" if meta["cached"] else f"written in {meta['generation_s']:.1f} s "
                 f"({meta['bytes'] / MB / max(meta['generation_s'], 1e-9):,.0f} MB/s)"), file=sys.stderr)
    del sentences

    # 2. vocabulary
    if args.vocab:
        results["vocab"] = dict(path=str(args.vocab.resolve()), given=True)
    else:
        smallest = Path(results["corpora"][0]["path"])
        vocab_dir = workdir / f"vocab-{args.vocab_size}-{smallest.stem}"
        meta = train_vocab(smallest, vocab_dir, args.vocab_size, args.vocab_sample)
        results["vocab"] = dict(meta, path=str(vocab_dir))
        print(f"vocabulary {vocab_dir}: {meta['tokens']} tokens, "
              + ("cached" if meta["cached"] else f"trained in {meta['train_s']} s"), file=sys.stderr)
    save()
    if args.generate_only:
        print(json.dumps(results["corpora"] + [results["vocab"]], indent=1))
        return 0

    # 3. runs
    if args.pretrain_from == "data":
        ok, last = cli_has(minibert, ["prepare", "--help"], "--corpus", workdir)
        if not ok:
            print(f"`minibert prepare` is not available in this checkout ({last}); stopping after the corpora and "
                  f"the vocabulary. Use --pretrain-from corpus to measure the in-memory path meanwhile.",
                  file=sys.stderr)
            return 2
        has_data, _ = cli_has(minibert, ["pretrain", "--help"], "--data", workdir)
        if not has_data:
            print("`minibert pretrain` has no --data option yet: pretrain runs are skipped", file=sys.stderr)
    vocab = results["vocab"]["path"]
    for corpus in results["corpora"]:
        row = dict(label=corpus["label"], bytes=corpus["bytes"], corpus=corpus["path"], prepare={})
        results["rows"].append(row)
        prepared = None
        if args.pretrain_only:
            prepared = next((workdir / f"prepared-{corpus['label']}-w{w}" for w in reversed(args.workers)
                             if (workdir / f"prepared-{corpus['label']}-w{w}" / "manifest.json").is_file()), None)
            row["counts"] = manifest_counts(prepared) if prepared else {}
            if prepared is None:
                row["pretrain"] = dict(skipped="no prepared folder")
            source = ["--data", str(prepared)] if prepared is not None else None
        elif args.pretrain_from == "data":
            for w in args.workers:
                out = workdir / f"prepared-{corpus['label']}-w{w}"
                shutil.rmtree(out, ignore_errors=True)
                cmd = minibert + ["prepare", "--corpus", corpus["path"], "--output", str(out), "--vocab", vocab,
                                  "--workers", str(w)] + shlex.split(args.prepare_args)
                print(f"[{corpus['label']}] prepare --workers {w} ...", file=sys.stderr, flush=True)
                r = measure(cmd, workdir / "logs" / f"prepare-{corpus['label']}-w{w}.log", time_limit=args.time_limit)
                if r["killed"]:
                    r["bytes_done"] = bytes_done(out)
                r["counts"] = manifest_counts(out)
                r["output_mb"] = folder_mb(out) if out.exists() else None
                row["prepare"][str(w)] = r
                print(f"[{corpus['label']}] prepare --workers {w}: rc {r['rc']}{' killed' if r['killed'] else ''}, "
                      f"{r['wall_s']:.1f} s, {fmt(mb_per_s(r, corpus['bytes']), '.2f')} MB/s, peak RSS "
                      f"{r['peak_tree_rss_mb']:,.0f} MB (largest process {r['peak_largest_mb']:,.0f} MB)",
                      file=sys.stderr)
                if r["rc"] != 0 and not r["killed"]:
                    print(log_tail(r["log"]), file=sys.stderr)
                if r["rc"] == 0 and not r["killed"]:
                    if prepared is not None and not args.keep:
                        shutil.rmtree(prepared, ignore_errors=True)     # keep the last complete one only
                    prepared = out
                elif not args.keep:
                    shutil.rmtree(out, ignore_errors=True)
                save()
            done = [r for r in row["prepare"].values() if r["rc"] == 0 and not r["killed"]]
            row["counts"] = next((r["counts"] for r in reversed(done) if r["counts"]), {})
            if len({json.dumps(r["counts"], sort_keys=True) for r in done}) > 1:
                row["counts_differ"] = {w: r["counts"] for w, r in row["prepare"].items()}
                print(f"[{corpus['label']}] WARNING: the manifests' counts differ between worker counts: "
                      f"{row['counts_differ']}", file=sys.stderr)
            if not has_data:
                row["pretrain"] = dict(skipped="no pretrain --data")
            elif prepared is None:
                row["pretrain"] = dict(skipped="no complete prepare")
            source = ["--data", str(prepared)] if prepared is not None else None
        elif corpus["bytes"] > 1e9:
            row["pretrain"] = dict(skipped="in-memory path: > 1 GB not run")
            source = None
        else:
            source = ["--corpus", corpus["path"], "--vocab", vocab]
        if source is not None and "pretrain" not in row:       # not marked skipped above
            run_dir = workdir / f"pretrain-{corpus['label']}"
            shutil.rmtree(run_dir, ignore_errors=True)
            cmd = minibert + ["pretrain", *source, "--output", str(run_dir), "--size", args.pretrain_size,
                              "--seq-len", str(args.seq_len), "--batch-size", str(args.batch_size),
                              "--steps", str(steps), "--log-every", "1", "--eval-every", "1000"]
            cmd += (["--objective", args.objective] if args.objective else []) + shlex.split(args.pretrain_args)
            print(f"[{corpus['label']}] pretrain {source[0]} ...", file=sys.stderr, flush=True)
            r = measure(cmd, workdir / "logs" / f"pretrain-{corpus['label']}.log", first_line=run_dir / "metrics.jsonl")
            row["pretrain"] = r
            print(f"[{corpus['label']}] pretrain: rc {r['rc']}, {r['wall_s']:.1f} s, first step "
                  f"{fmt(r['first_step_s'], '.1f')} s, peak RSS {r['peak_tree_rss_mb']:,.0f} MB "
                  f"(largest process {r['peak_largest_mb']:,.0f} MB)", file=sys.stderr)
            if r["rc"] != 0:
                print(log_tail(r["log"]), file=sys.stderr)
            shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)
        save()

    print(report(results, args.workers))
    print(f"\nraw results: {workdir / 'results.json'}", file=sys.stderr)
    runs = [r for row in results["rows"] for r in [*row["prepare"].values(), row.get("pretrain")]
            if r and not r.get("skipped")]
    return 1 if any(r["rc"] != 0 and not r["killed"] for r in runs) else 0


if __name__ == "__main__":
    sys.exit(main())
