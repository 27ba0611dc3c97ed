"""Masked-LM corruption (Devlin et al., 2019, §3.1 Task #1 and Appendix A.1).

Each maskable token is chosen with probability `rate` (15% in BERT, 30% in MosaicBERT); a chosen token
is replaced by [MASK] 80% of the time, by a random token 10%, and kept 10%; the labels hold the original
ids at chosen positions and -100 elsewhere. Special tokens and padding are never chosen. With whole-word
masking, a word's pieces (`##` continuations) are chosen together. Deterministic for a numpy Generator.
"""

from __future__ import annotations

import numpy as np

from minibert.losses import IGNORE_INDEX


def mask_tokens(input_ids: np.ndarray, maskable: np.ndarray, rng: np.random.Generator, *, rate: float,
                mask_id: int, vocab_size: int, continuation: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(batch, seq) ids → (corrupted ids, labels).

    maskable: (batch, seq) bool, False at special tokens and padding.
    continuation: (batch, seq) bool, True at a word's non-first piece; given → whole-word masking."""
    draw = rng.random(input_ids.shape)
    if continuation is None:
        chosen = (draw < rate) & maskable
    else:
        word = np.cumsum(~continuation, axis=1)                 # word index of every piece, per row
        chosen = (np.take_along_axis(draw, _word_starts(word), axis=1) < rate) & maskable  # one draw per word
    labels = np.where(chosen, input_ids, IGNORE_INDEX)
    action = rng.random(input_ids.shape)
    random_ids = rng.integers(0, vocab_size, input_ids.shape)
    corrupted = np.where(chosen & (action < 0.8), mask_id, input_ids)
    corrupted = np.where(chosen & (action >= 0.8) & (action < 0.9), random_ids, corrupted)
    return corrupted, labels


def _word_starts(word: np.ndarray) -> np.ndarray:
    """For every position, the position of the first piece of its word (word ids increase along a row)."""
    return np.stack([np.searchsorted(row, row, side="left") for row in word])
