"""Pipelines with Hugging Face's output format.

fill_mask: for every [MASK] in the text, the `top_k` most likely tokens, each as
    {"score": p, "token": id, "token_str": piece, "sequence": text with the mask filled}.
text_classification: {"label", "score"} per text.
token_classification: {"entity", "score", "index", "word", "start", "end"} per piece, or grouped entities
    {"entity_group", "score", "word", "start", "end"} (aggregation "simple", "first", "average", "max").
question_answering: {"score", "start", "end", "answer"}, the answer a span of the context.
Words are rebuilt from pieces as Hugging Face's BERT tokenizer does ("##" glued on, no space before punctuation).
"""

import jax
import numpy as np

from minibert.models.finetuning import id2label, num_labels
from minibert.tasks import squad
from minibert.tokenization.wordpiece import decode


def fill_mask(model, tokenizer, text: str, top_k: int = 5) -> list[list[dict]]:
    """Predict every [MASK] of `text` with a masked-LM model; one list of candidates per mask."""
    encoding = tokenizer.encode(text)
    ids = np.array([encoding.ids])
    masks = np.flatnonzero(ids[0] == tokenizer.mask_id)
    if masks.size == 0:
        raise ValueError(f"no [MASK] token in {text!r}")
    logits = model(ids, attention_mask=np.ones_like(ids), token_type_ids=np.zeros_like(ids)).logits
    # a vocabulary padded to a multiple of 64 has rows no token uses: predict among the tokenizer's own
    probs = np.asarray(jax.nn.softmax(logits[0, masks, :len(tokenizer)].astype("float32"), axis=-1))
    results = []
    for position, p in zip(masks, probs):
        candidates = []
        for token in np.argsort(-p)[:top_k]:
            filled = ids[0].copy()
            filled[position] = token
            candidates.append({"score": float(p[token]), "token": int(token),
                               "token_str": tokenizer.id_to_token[int(token)],
                               "sequence": tokenizer.decode(filled.tolist())})
        results.append(candidates)
    return results


# ---- shared by the task pipelines and fine-tuning --------------------------------------------------------------

def model_inputs(model, arrays: dict) -> dict[str, np.ndarray]:
    """input_ids, attention_mask, token_type_ids of `arrays`; token types zeroed for a family without them
    (ModernBERT)."""
    inputs = {k: np.asarray(arrays[k]) for k in ("input_ids", "attention_mask", "token_type_ids")}
    if getattr(model.config, "type_vocab_size", None) is None:
        inputs["token_type_ids"] = np.zeros_like(inputs["token_type_ids"])
    return inputs


def batched_forward(model, arrays: dict, batch_size: int,
                    fields: tuple[str, ...] = ("logits",)) -> dict[str, np.ndarray]:
    """Run `model` over (n, …) arrays in batches of `batch_size` (the last one filled up by repeating its last
    row, so that every call has one shape and compiles once); the output `fields`, as (n, …) float32 numpy."""
    inputs = model_inputs(model, arrays)
    n = len(inputs["input_ids"])
    batch_size = min(batch_size, n)
    outputs = {name: [] for name in fields}
    for start in range(0, n, batch_size):
        rows = np.minimum(np.arange(start, start + batch_size), n - 1)
        out = model(**{k: v[rows] for k, v in inputs.items()})
        for name in fields:
            outputs[name].append(np.asarray(getattr(out, name), np.float32)[:min(batch_size, n - start)])
    return {name: np.concatenate(parts) for name, parts in outputs.items()}


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


# ---- text-classification ----------------------------------------------------------------------------------------

def text_classification(model, tokenizer, texts: str | list[str], *, top_k: int | None = 1, batch_size: int = 32,
                        max_length: int | None = None):
    """Hugging Face's "text-classification" output. With top_k=1 (the default), a list with {"label": name,
    "score": p} per text (one text: a list of one). Otherwise each text's `top_k` best (None: every label),
    best first: a list of them for one text, a list of such lists for several.

    Scores are the softmax over the classes; a sigmoid per class for one output or multi-label problems."""
    single = isinstance(texts, str)
    batch = tokenizer([texts] if single else list(texts), padding=True, truncation=True, max_length=max_length)
    logits = batched_forward(model, batch, batch_size)["logits"]
    multi_label = model.config.extra.get("problem_type") == "multi_label_classification"
    scores = 1 / (1 + np.exp(-logits)) if num_labels(model.config) == 1 or multi_label else _softmax(logits)
    names = id2label(model.config)
    results = []
    for row in scores:
        ranked = [{"label": names[int(i)], "score": float(row[i])} for i in np.argsort(-row, kind="stable")]
        results.append(ranked[0] if top_k == 1 else ranked[:top_k])
    return results[0] if single and top_k != 1 else results


# ---- token-classification --------------------------------------------------------------------------------------

AGGREGATIONS = ("none", "simple", "first", "average", "max")


def token_classification(model, tokenizer, text: str, *, aggregation_strategy: str = "none",
                         ignore_labels: tuple[str, ...] = ("O",)) -> list[dict]:
    """Hugging Face's "token-classification" (NER) output for one text.

    "none": one entry per piece, {"entity": tag, "score", "index" (position in the input), "word", "start",
    "end"} (character offsets). "simple": adjacent pieces whose tags continue one another (B-X then I-X, …) are
    grouped into {"entity_group": X, "score" (mean), "word", "start", "end"}. "first" / "average" / "max": each
    word first takes one tag (its first piece's; the average scores'; the most confident piece's), then words are
    grouped the same way. Entries tagged with an `ignore_labels` tag are left out."""
    if aggregation_strategy not in AGGREGATIONS:
        raise ValueError(f"aggregation_strategy {aggregation_strategy!r} is not one of {AGGREGATIONS}")
    limit = getattr(model.config, "max_position_embeddings", None)
    encoding = tokenizer.encode(text, max_length=limit, truncation=limit is not None)
    batch = {"input_ids": [encoding.ids], "attention_mask": [encoding.attention_mask],
             "token_type_ids": [encoding.type_ids]}
    scores = _softmax(batched_forward(model, batch, 1)["logits"][0])
    names = id2label(model.config)
    special = {tokenizer.cls_id, tokenizer.sep_id, tokenizer.pad_id}
    pieces = []
    for index, (token_id, (start, end)) in enumerate(zip(encoding.ids, encoding.offsets)):
        if token_id in special:
            continue
        unknown = token_id == tokenizer.unk_id
        word = text[start:end] if unknown else tokenizer.id_to_token[token_id]
        pieces.append({"scores": scores[index], "index": index, "word": word, "start": start, "end": end,
                       "is_subword": word.startswith("##") and not unknown})
    if aggregation_strategy in ("none", "simple"):
        entities = [_tagged(p["scores"], names, index=p["index"], word=p["word"], start=p["start"], end=p["end"])
                    for p in pieces]
    else:
        entities = [_word_entity(group, names, aggregation_strategy) for group in _words(pieces)]
    if aggregation_strategy != "none":
        entities = _group_entities(entities)
    key = "entity" if aggregation_strategy == "none" else "entity_group"
    return [e for e in entities if e[key] not in ignore_labels]


def _tagged(scores: np.ndarray, names: dict, **fields) -> dict:
    best = int(np.argmax(scores))
    return {"entity": names[best], "score": float(scores[best]), **fields}


def _words(pieces: list[dict]) -> list[list[dict]]:
    """Pieces grouped into words: a continuation piece ("##…") joins the word before it."""
    words = []
    for piece in pieces:
        if piece["is_subword"] and words:
            words[-1].append(piece)
        else:
            words.append([piece])
    return words


def _word_entity(group: list[dict], names: dict, strategy: str) -> dict:
    if strategy == "first":
        scores = group[0]["scores"]
    elif strategy == "max":
        scores = max(group, key=lambda p: p["scores"].max())["scores"]
    else:
        scores = np.mean([p["scores"] for p in group], axis=0)
    return _tagged(scores, names, word=decode([p["word"] for p in group]), start=group[0]["start"],
                   end=group[-1]["end"])


def _split_tag(tag: str) -> tuple[str, str]:
    """("B" or "I", type); a tag without a B-/I- prefix continues (as "I")."""
    return (tag[0], tag[2:]) if tag[:2] in ("B-", "I-") else ("I", tag)


def _group_entities(entities: list[dict]) -> list[dict]:
    """Adjacent entries of one type, each but the first not a B-, form one {"entity_group", "score" (mean),
    "word", "start", "end"}."""
    groups = []
    for entity in entities:
        bi, kind = _split_tag(entity["entity"])
        if groups and bi != "B" and kind == _split_tag(groups[-1][-1]["entity"])[1]:
            groups[-1].append(entity)
        else:
            groups.append([entity])
    return [{"entity_group": _split_tag(g[0]["entity"])[1], "score": float(np.mean([e["score"] for e in g])),
             "word": decode([e["word"] for e in g]), "start": g[0]["start"], "end": g[-1]["end"]}
            for g in groups]


# ---- question-answering ----------------------------------------------------------------------------------------

def question_answering(model, tokenizer, question: str, context: str, *, top_k: int = 1, max_answer_len: int = 15,
                       max_seq_len: int = 384, doc_stride: int = 128, max_question_len: int = 64,
                       batch_size: int = 8):
    """Hugging Face's "question-answering" output: {"score", "start", "end", "answer"} (character offsets into
    `context`), or a list of the `top_k` best. The context is cut into windows as for SQuAD (tasks/squad.py,
    `doc_stride` the step between windows); the score is p(start) · p(end), each a softmax over a window's
    context tokens."""
    example = squad.QAExample("0", question, context, [], [])
    features = squad.prepare_features(tokenizer, [example], max_length=max_seq_len, doc_stride=doc_stride,
                                      max_query_length=max_question_len)
    out = batched_forward(model, features.arrays, batch_size, fields=("start_logits", "end_logits"))
    best = squad.postprocess([example], features, out["start_logits"], out["end_logits"], n_best=max(20, top_k),
                             max_answer_length=max_answer_len, top_k=top_k, probabilities=True)[0]
    return best[0] if top_k == 1 and best else best
