"""Pipelines with Hugging Face's output format.

fill_mask: for every [MASK] in the text, the `top_k` most likely tokens, each as
    {"score": p, "token": id, "token_str": piece, "sequence": text with the mask filled} (with several masks the
    sequence keeps the special tokens, the other masks among them, as `transformers` writes it).
text_classification: {"label", "score"} per text.
token_classification: {"entity", "score", "index", "word", "start", "end"} per piece, or grouped entities
    {"entity_group", "score", "word", "start", "end"} (aggregation "simple", "first", "average", "max").
question_answering: {"score", "start", "end", "answer"}, the answer a span of the context.
feature_extraction: each text's (1, seq, hidden) first output (last_hidden_state), as nested lists or arrays.
Words are rebuilt from pieces by the tokenizer's decoder (`convert_tokens_to_string`), as Hugging Face does; a
piece continues a word when the tokenizer's `word_ids` say so.

Each pipeline first checks that the model has its head (`require_head`): a bare encoder given to fill-mask is a
ValueError naming the class to load instead, not a failure deep inside. Sentence embeddings: tasks/embeddings.py.
"""

import numpy as np

from minibert.inference import batched_forward, encoder_inputs
from minibert.models import auto
from minibert.tasks import squad

# pipeline → (the auto tasks whose classes have its head, what that head is)
PIPELINE_HEADS = {
    "fill-mask": (("masked-lm", "pretraining"), "masked-language-model"),
    "text-classification": (("sequence-classification",), "sequence-classification"),
    "token-classification": (("token-classification",), "token-classification"),
    "question-answering": (("question-answering",), "question-answering (span start/end)"),
}
NOT_A_MASKED_LM = {"ElectraForPreTraining"}   # ELECTRA's pretraining model is the replaced-token discriminator


def require_head(model, pipeline: str) -> None:
    """Raise ValueError unless `model` has the head `pipeline` reads, naming the model's class, the missing head
    and the family's class that has it (e.g. BertModel → BertForMaskedLM for fill-mask)."""
    tasks, head = PIPELINE_HEADS[pipeline]
    model_type = model.config.model_type
    classes = auto.MODEL_CLASSES.get(model_type, {})
    accepted = [classes[t] for t in tasks if t in classes and classes[t] not in NOT_A_MASKED_LM]
    name = type(model).__name__
    if name in accepted:
        return
    instead = (f"load {accepted[0]} (config.json's \"architectures\": [\"{accepted[0]}\"]) or a checkpoint "
               f"fine-tuned with one" if accepted else f"minibert's {model_type} family has no model with one")
    raise ValueError(f"{pipeline} needs a {head} head, and {name} has none: {instead}")


def fill_mask(model, tokenizer, text: str, top_k: int = 5) -> list[list[dict]]:
    """Predict every [MASK] of `text` with a masked-LM model; one list of candidates per mask. Raises ValueError
    for a model without an MLM head or a text without [MASK]."""
    require_head(model, "fill-mask")
    encoding = tokenizer.encode(text)
    ids = np.array([encoding.ids])
    if tokenizer.mask_token is None:
        raise ValueError("fill-mask needs a tokenizer with a mask token, and this one has none")
    masks = np.flatnonzero(ids[0] == tokenizer.mask_token_id)
    if masks.size == 0:
        raise ValueError(f"no {tokenizer.mask_token} token in {text!r}")
    logits = model(ids, attention_mask=np.ones_like(ids), token_type_ids=np.zeros_like(ids)).logits
    # a vocabulary padded to a multiple of 64 has rows no token uses: predict among the tokenizer's own
    probs = _softmax(np.asarray(logits, np.float64)[0, masks, :len(tokenizer)])
    results = []
    for position, p in zip(masks, probs):
        candidates = []
        for token in np.argsort(-p, kind="stable")[:top_k]:
            filled = ids[0].copy()
            filled[position] = token
            # one mask: the text without special tokens; several: with them, so the other masks stay (transformers)
            sequence = tokenizer.decode(filled.tolist(), skip_special_tokens=masks.size == 1)
            candidates.append({"score": float(p[token]), "token": int(token),
                               "token_str": tokenizer.decode([int(token)]), "sequence": sequence})
        results.append(candidates)
    return results


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


# ---- text-classification ----------------------------------------------------------------------------------------

FUNCTIONS = ("softmax", "sigmoid", "none")


def score_function(config) -> str:
    """The function `transformers`' text-classification applies to the logits, from config.json: "none" (the raw
    score) for `problem_type` "regression"; "sigmoid" per label for "multi_label_classification" or a single
    label; "softmax" over the labels otherwise."""
    if config.problem_type == "regression":
        return "none"
    if config.problem_type == "multi_label_classification" or config.num_labels == 1:
        return "sigmoid"
    return "softmax"


def text_classification(model, tokenizer, texts: str | list[str], *, top_k: int | None = 1, batch_size: int = 32,
                        max_length: int | None = None, function_to_apply: str | None = None):
    """Hugging Face's "text-classification" output. With top_k=1 (the default), a list with {"label": name,
    "score": s} per text (one text: a list of one). Otherwise each text's `top_k` best (None: every label),
    best first: a list of them for one text, a list of such lists for several. Labels are config.json's
    `id2label` names (LABEL_i without them).

    `function_to_apply` ("softmax", "sigmoid", "none"; default: `score_function` of the config, as
    `transformers` chooses it) turns the logits into scores. Raises ValueError for a model without a
    sequence-classification head or an unknown function."""
    require_head(model, "text-classification")
    function = function_to_apply or score_function(model.config)
    if function not in FUNCTIONS:
        raise ValueError(f"function_to_apply {function_to_apply!r} is not one of {FUNCTIONS}")
    single = isinstance(texts, str)
    batch = tokenizer([texts] if single else list(texts), padding=True, truncation=True, max_length=max_length,
                      return_tensors="np")
    logits = batched_forward(model, batch, batch_size)["logits"]
    scores = {"none": lambda x: x, "sigmoid": lambda x: 1 / (1 + np.exp(-x)), "softmax": _softmax}[function](logits)
    names = model.config.id2label
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
    require_head(model, "token-classification")
    if aggregation_strategy not in AGGREGATIONS:
        raise ValueError(f"aggregation_strategy {aggregation_strategy!r} is not one of {AGGREGATIONS}")
    limit = model.config.longest_input
    encoding = tokenizer.encode(text, max_length=limit, truncation=limit is not None)
    batch = {"input_ids": [encoding.ids], "attention_mask": [encoding.attention_mask],
             "token_type_ids": [encoding.type_ids]}
    scores = _softmax(batched_forward(model, batch, 1)["logits"][0])
    names = model.config.id2label
    pieces, previous_word = [], None
    for index, (token_id, (start, end)) in enumerate(zip(encoding.ids, encoding.offsets)):
        word_id = encoding.word_ids[index]
        if encoding.special_tokens_mask[index]:
            previous_word = None
            continue
        unknown = token_id == tokenizer.unk_token_id
        word = text[start:end] if unknown else tokenizer.convert_ids_to_tokens(token_id)
        pieces.append({"scores": scores[index], "index": index, "word": word, "start": start, "end": end,
                       "is_subword": word_id == previous_word and not unknown})
        previous_word = word_id
    decode = tokenizer.convert_tokens_to_string
    if aggregation_strategy in ("none", "simple"):
        entities = [_tagged(p["scores"], names, index=p["index"], word=p["word"], start=p["start"], end=p["end"])
                    for p in pieces]
    else:
        entities = [_word_entity(group, names, aggregation_strategy, decode) for group in _words(pieces)]
    if aggregation_strategy != "none":
        entities = _group_entities(entities, decode)
    key = "entity" if aggregation_strategy == "none" else "entity_group"
    return [e for e in entities if e[key] not in ignore_labels]


def _tagged(scores: np.ndarray, names: dict, **fields) -> dict:
    best = int(np.argmax(scores))
    return {"entity": names[best], "score": float(scores[best]), **fields}


def _words(pieces: list[dict]) -> list[list[dict]]:
    """Pieces grouped into words: a piece of the same word as the one before (BERT's "##…") joins it."""
    words = []
    for piece in pieces:
        if piece["is_subword"] and words:
            words[-1].append(piece)
        else:
            words.append([piece])
    return words


def _word_entity(group: list[dict], names: dict, strategy: str, decode) -> dict:
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


def _group_entities(entities: list[dict], decode) -> list[dict]:
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
    `doc_stride` the step between windows, each at most `max_seq_len` tokens or the model's longest input); the
    score is p(start) · p(end), each a softmax over a window's context tokens. The answers are distinct spans: a
    span that two overlapping windows both propose counts once, with its better score."""
    require_head(model, "question-answering")
    example = squad.QAExample("0", question, context, [], [])
    max_seq_len = min(max_seq_len, model.config.longest_input or max_seq_len)
    features = squad.prepare_features(tokenizer, [example], max_length=max_seq_len, doc_stride=doc_stride,
                                      max_query_length=max_question_len)
    out = batched_forward(model, features.arrays, batch_size, fields=("start_logits", "end_logits"))
    best = squad.postprocess([example], features, out["start_logits"], out["end_logits"], n_best=max(20, top_k),
                             max_answer_length=max_answer_len, top_k=top_k, probabilities=True)[0]
    return best[0] if top_k == 1 and best else best


# ---- feature-extraction ----------------------------------------------------------------------------------------

def feature_extraction(model, tokenizer, texts: str | list[str], *, return_tensors: bool = False,
                       max_length: int | None = None):
    """Hugging Face's "feature-extraction" output: per text, the model's first output (a bare encoder's
    last_hidden_state) for that text alone, shape (1, seq, hidden) with seq its own length (special tokens
    included) — nested lists, or float32 numpy arrays with `return_tensors`. One text gives one such value, a list
    of texts a list of them. Texts longer than `max_length` (default: the model's longest input) are truncated."""
    single = isinstance(texts, str)
    limit = max_length or model.config.longest_input
    results = []
    for text in [texts] if single else list(texts):
        inputs = encoder_inputs(model, tokenizer([text], truncation=limit is not None, max_length=limit,
                                                 return_tensors="np"))
        first = np.asarray(model(**inputs)[0], np.float32)
        results.append(first if return_tensors else first.tolist())
    return results[0] if single else results
