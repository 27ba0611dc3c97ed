"""Unpadding and packing: unpad → repad identity, the layout (segment ids, positions), capacity, jit, and
attention over documents packed in one row == each document alone. `attention_mask` is 0/1 visibility only;
packed documents are the separate `segment_ids`."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from minibert.nn.alibi import alibi_bias, alibi_slopes
from minibert.nn.attention import document_mask, dot_product_attention
from minibert.nn.packing import (check_capacity, default_positions, pack, positions_from_segments, repad,
                                 set_token_capacity, unpad)

MASK = np.array([[1, 1, 1, 0, 0],
                 [0, 0, 0, 0, 0],        # an empty row
                 [1, 1, 1, 1, 1],        # two documents packed in one row (SEGMENTS)
                 [0, 1, 1, 1, 0]])       # left and right padding
SEGMENTS = np.array([[1, 1, 1, 0, 0],
                     [0, 0, 0, 0, 0],
                     [1, 1, 2, 2, 2],
                     [0, 1, 1, 1, 0]])


@pytest.fixture
def x():
    return np.random.default_rng(0).standard_normal((*MASK.shape, 3)).astype(np.float32)


def test_unpad_then_repad_is_identity_at_real_tokens_and_zero_at_padding(x):
    packed, u = unpad(jnp.asarray(x), jnp.asarray(MASK))
    assert packed.shape == (1, MASK.size, 3)
    back = np.asarray(repad(packed, u))
    np.testing.assert_array_equal(back[MASK > 0], x[MASK > 0])
    assert not back[MASK == 0].any()


def test_layout_segment_ids_and_positions(x):
    packed, u = unpad(jnp.asarray(x), jnp.asarray(MASK), capacity=12, segment_ids=jnp.asarray(SEGMENTS))
    real = int((MASK > 0).sum())                                       # 11 real tokens, 1 empty slot
    np.testing.assert_array_equal(packed[0, :real], x[MASK > 0])
    assert not np.asarray(packed[0, real:]).any()
    # documents in packed order: row 0; row 2's two documents; row 3 (row 1 is empty) — then the empty slot
    assert u.segment_ids.tolist() == [[1, 1, 1, 2, 2, 3, 3, 3, 4, 4, 4, 0]]
    assert u.positions.tolist() == [[0, 1, 2, 0, 1, 0, 1, 2, 0, 1, 2, 0]]
    assert u.indices.tolist() == [0, 1, 2, 10, 11, 12, 13, 14, 16, 17, 18, 20]


def test_without_segment_ids_each_row_is_one_document_at_its_column_positions(x):
    """A 0/1 mask says nothing about documents: row 2 is one document whatever its values, and positions are
    the columns (row 3 is left-padded: its tokens sit at 1, 2, 3), as transformers numbers an unpacked row."""
    _, u = unpad(jnp.asarray(x), jnp.asarray(MASK), capacity=12)
    assert u.segment_ids.tolist() == [[1, 1, 1, 2, 2, 2, 2, 2, 3, 3, 3, 0]]
    assert u.positions.tolist() == [[0, 1, 2, 0, 1, 2, 3, 4, 1, 2, 3, 0]]


def test_a_hole_in_the_mask_is_not_a_document_boundary_and_keeps_positions():
    """`1 1 0 1 1`: the hidden token is dropped, the row stays one document and the tokens after the hole keep
    their positions 3, 4 (neither restarted nor closed up); values other than 0/1 carry no document ids."""
    mask = jnp.array([[1, 1, 0, 1, 1], [2, 2, 0, 3, 3]])
    packed, u = unpad(jnp.arange(10).reshape(2, 5), mask, capacity=8)
    assert packed.tolist() == [[0, 1, 3, 4, 5, 6, 8, 9]]
    assert u.segment_ids.tolist() == [[1, 1, 1, 1, 2, 2, 2, 2]]
    assert u.positions.tolist() == [[0, 1, 3, 4, 0, 1, 3, 4]]


def test_segment_ids_and_mask_combine():
    """A token is real when visible and in a document: a hole inside a packed document is dropped without
    restarting its positions, a token of segment 0 is padding even where the mask says 1."""
    mask = jnp.array([[1, 1, 0, 1, 1, 1, 1]])
    segments = jnp.array([[1, 1, 1, 1, 2, 2, 0]])
    packed, u = unpad(jnp.arange(7)[None], mask, capacity=7, segment_ids=segments)
    assert packed.tolist() == [[0, 1, 3, 4, 5, 0, 0]]
    assert u.segment_ids.tolist() == [[1, 1, 1, 2, 2, 0, 0]]
    assert u.positions.tolist() == [[0, 1, 3, 0, 1, 0, 0]]
    with pytest.raises(ValueError, match="5 real tokens but the token capacity is 4"):
        check_capacity(mask, 4, segments)
    check_capacity(mask, 5, segments)
    with pytest.raises(ValueError, match="segment_ids has shape"):
        unpad(jnp.arange(7)[None], mask, segment_ids=segments[:, :5])


def test_default_positions():
    assert default_positions(None, (2, 4)).tolist() == [[0, 1, 2, 3], [0, 1, 2, 3]]
    assert default_positions(jnp.array([[1, 1, 2, 0]]), (1, 4)).tolist() == [[0, 1, 0, 0]]


def test_one_document_per_row_gives_row_index_plus_one():
    mask = jnp.array([[1, 1, 0], [1, 0, 0], [1, 1, 1]])
    _, u = unpad(mask, mask)
    assert u.segment_ids[0, :6].tolist() == [1, 1, 2, 3, 3, 3]


def test_capacity_saves_slots_and_too_small_is_an_error(x):
    real = int((MASK > 0).sum())
    packed, u = unpad(jnp.asarray(x), jnp.asarray(MASK), capacity=real)
    assert packed.shape == (1, real, 3)
    np.testing.assert_array_equal(np.asarray(repad(packed, u))[MASK > 0], x[MASK > 0])
    with pytest.raises(ValueError, match=f"{real} real tokens but the token capacity is {real - 1}"):
        unpad(jnp.asarray(x), jnp.asarray(MASK), capacity=real - 1)


def test_pack_lays_out_another_tensor_the_same_way(x):
    ids = np.arange(MASK.size).reshape(MASK.shape)
    _, u = unpad(jnp.asarray(x), jnp.asarray(MASK), capacity=12)
    assert pack(jnp.asarray(ids), u)[0].tolist() == np.append(ids[MASK > 0], 0).tolist()
    with pytest.raises(ValueError, match="unpadded batch was"):
        pack(jnp.zeros((2, 5)), u)


def test_works_under_jit_with_static_capacity(x):
    @jax.jit
    def roundtrip(x, mask, segments):
        packed, u = unpad(x, mask, capacity=12, segment_ids=segments)
        return repad(packed * 2, u), u.positions

    back, positions = roundtrip(jnp.asarray(x), jnp.asarray(MASK), jnp.asarray(SEGMENTS))
    np.testing.assert_array_equal(np.asarray(back)[MASK > 0], 2 * x[MASK > 0])
    assert positions.tolist() == [[0, 1, 2, 0, 1, 0, 1, 2, 0, 1, 2, 0]]


def test_positions_from_segments():
    segments = jnp.array([[1, 1, 1, 2, 2, 3, 0, 0], [0, 0, 1, 1, 1, 1, 1, 0]])
    assert positions_from_segments(segments).tolist() == [[0, 1, 2, 0, 1, 0, 0, 0], [0, 0, 0, 1, 2, 3, 4, 0]]


def test_set_token_capacity_sets_every_unpadding_module():
    class Unpadder(nnx.Module):                  # any module with a `token_capacity` attribute
        def __init__(self):
            self.token_capacity = None

    model = nnx.List([Unpadder(), Unpadder()])
    set_token_capacity(model, 7)
    assert [m.token_capacity for m in model] == [7, 7]
    with pytest.raises(ValueError, match="positive"):
        set_token_capacity(model, 0)


def test_packed_attention_equals_each_document_alone():
    """Three documents in one row (+ padding): document mask + ALiBi from restarting positions == alone."""
    rng = np.random.default_rng(1)
    lengths, heads, dim = (4, 2, 5), 3, 8
    seq = sum(lengths) + 2
    segments = np.zeros((1, seq), np.int32)
    segments[0, :sum(lengths)] = np.repeat(np.arange(1, 4), lengths)
    q, k, v = (jnp.asarray(rng.standard_normal((1, seq, heads, dim)).astype(np.float32)) for _ in range(3))
    slopes = alibi_slopes(heads)
    segments = jnp.asarray(segments)
    packed = dot_product_attention(q, k, v, alibi_bias(slopes, positions_from_segments(segments)),
                                   mask=document_mask(segments > 0, segments))
    start = 0
    for n in lengths:
        part = slice(start, start + n)
        alone = dot_product_attention(q[:, part], k[:, part], v[:, part], alibi_bias(slopes, jnp.arange(n)[None]))
        np.testing.assert_allclose(np.asarray(packed[:, part]), np.asarray(alone), atol=1e-6, rtol=0)
        start += n
