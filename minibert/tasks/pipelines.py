"""Pipelines with Hugging Face's output format.

fill_mask: for every [MASK] in the text, the `top_k` most likely tokens, each as
    {"score": p, "token": id, "token_str": piece, "sequence": text with the mask filled}.
"""

import jax
import numpy as np


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
