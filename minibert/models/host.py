"""A model called with host arrays: inputs padded to a bucket length, one compiled function per bucket, outputs
sliced back to the real length.

The bucket rule. A sequence of length L runs at the next multiple of `model.pad_to_multiple_of` (default 32),
capped at the model's longest input (`max_position_embeddings`; RoBERTa's less its offset): lengths 1–32 share
one compiled forward pass, 33–64 the next, … — so a loop over texts of every length compiles a handful of times
instead of once per length (and, with `minibert.enable_compilation_cache()`, loads them in a later process). The
padding is right padding (pad id, attention_mask 0, token type 0), and every output with a sequence axis
(last_hidden_state, hidden_states, token logits, start/end logits, attentions on both axes) is sliced back to L,
so the results at the real positions are those of the unpadded call. Set `model.pad_to_multiple_of = None` to run
every length as it is, or another multiple (8, 64, …) to trade compiles for padded work.

Two families see right padding, and are never bucketed (`PADDING_VISIBLE`): ConvBERT's span-based dynamic
convolution mixes each position with its neighbours, padding included, and MobileBERT's trigram embedding reads
the next token's embedding (a pad token's, instead of zeros, at the last real position) — as in `transformers`; so
is a config that says `padding_visible` (Flex with ConvBERT's convolution).
Calls with targets (labels, positions, packed rows) or `inputs_embeds` are not bucketed either: they run as given.

The forward pass. The model is split once (`nnx.split`) into its graph and its Variables; each call reads the
Variables' current values (so `variable.value = …`, `nnx.update` and optimizer steps are seen) and calls a
`jax.jit` of the pure function (values, inputs) → outputs, without walking the module graph again. The split is
redone when the model's mode changes — `train()`/`eval()` (each Dropout's `deterministic`), the attention
implementation, attention recording (`MODE_ATTRIBUTES`) — and kept per mode, so switching back compiles nothing.
Dropout's random state advances in train mode as under `nnx.jit`. A model whose attention modules sow their
maps (`nn.attention.record_attention_maps`), or that is called inside `nnx.capture`, runs unpadded under
`nnx.jit`, which hands what was sown back to the model. A submodule or a Variable object replaced since the last
call (`model.classifier = Linear(...)`) is found by a walk of the attributes (`variable_ids`, ~0.2 ms), and the model
is split again.
"""

from __future__ import annotations

import functools
import weakref

import jax
import numpy as np
from flax import nnx

DEFAULT_PAD_TO_MULTIPLE_OF = 32

# model_type → why right padding changes that family's outputs at the real positions
PADDING_VISIBLE = {
    "convbert": "the span-based dynamic convolution mixes each position with its padded neighbours",
    "mobilebert": "the trigram embedding of the last real position reads the next (pad) token's embedding",
}

# Static module attributes that change what the forward pass computes (train/eval, attention path, recording).
MODE_ATTRIBUTES = ("deterministic", "use_running_average", "attention_implementation", "record_attention")


def bucket_length(length: int, multiple: int | None, limit: int | None = None) -> int:
    """The padded length of a sequence of `length` tokens: the next multiple of `multiple` (None: `length`
    itself), at most `limit` (the config's longest_input) but never below `length`."""
    if multiple is None or length <= 0:
        return length
    padded = -(-length // multiple) * multiple
    return max(length, padded if limit is None else min(padded, limit))


def padded_length(model, length: int) -> int:
    """The length `model` runs a host call of `length` tokens at (the bucket rule above)."""
    if model.config.model_type in PADDING_VISIBLE or getattr(model.config, "padding_visible", False):
        return length
    return bucket_length(length, model.pad_to_multiple_of, model.config.longest_input)


def pad_inputs(arrays: list[np.ndarray], pad_values: list[int], length: int) -> list[np.ndarray]:
    """Each (…, seq) array right-padded to `length` with its pad value."""
    return [np.pad(a, [(0, 0)] * (a.ndim - 1) + [(0, length - a.shape[-1])], constant_values=v)
            for a, v in zip(arrays, pad_values)]


class _CompiledModel:
    """One mode of a model: its graph, its live Variables in state order, and the jit of the pure forward."""

    def __init__(self, model, forward):
        graphdef, state = nnx.split(model)
        self.variables, treedef = jax.tree.flatten(state, is_leaf=lambda x: isinstance(x, nnx.Variable))
        training = any(getattr(m, "deterministic", True) is False for _, m in nnx.iter_modules(model))
        # the random streams that dropout advances (eval mode: none, so nothing to write back)
        self.counts = counts = [i for i, v in enumerate(self.variables) if training and isinstance(v, nnx.RngCount)]
        self.sequence_axes: dict[tuple, object] = {}

        def pure(values, input_ids, attention_mask, token_type_ids, targets, output_hidden_states, output_attentions):
            module = nnx.merge(graphdef, jax.tree.unflatten(treedef, values))
            out = forward(module, input_ids, attention_mask, token_type_ids, output_hidden_states, output_attentions,
                          targets)
            new_values = jax.tree.leaves(nnx.state(module))
            return out, [new_values[i] for i in counts]

        self.pure = pure
        self.function = jax.jit(pure, static_argnames=("output_hidden_states", "output_attentions"))

    def __call__(self, *inputs, **flags):
        out, counts = self.function([v.get_raw_value() for v in self.variables], *inputs, **flags)
        for i, count in zip(self.counts, counts):   # dropout's random stream moves on, as under nnx.jit
            self.variables[i].set_raw_value(count)
        return out

    def sequence_axes_of(self, inputs: tuple, out, flags: dict):
        """A pytree like `out` (the output for `inputs`): for each array, the set of axes that follow the input's
        sequence length — found once per input rank and flags by tracing (not compiling) one token shorter and
        comparing the shapes."""
        key = (inputs[0].ndim, tuple(sorted(flags.items())))
        if key not in self.sequence_axes:
            shorter = [jax.ShapeDtypeStruct((*a.shape[:-1], a.shape[-1] - 1), a.dtype) for a in inputs[:3]]
            values = [v.get_raw_value() for v in self.variables]
            shapes = jax.eval_shape(lambda *a: self.pure(values, *a, **flags)[0], *shorter, inputs[3])
            self.sequence_axes[key] = jax.tree.map(
                lambda a, b: frozenset(i for i, (m, n) in enumerate(zip(a.shape, b.shape)) if m != n), out, shapes)
        return self.sequence_axes[key]


@functools.cache
def _graph_jit(forward):
    """`forward` under nnx.jit: the module graph walked on every call, what is sown into it kept."""
    return nnx.jit(forward, static_argnames=("output_hidden_states", "output_attentions"))


CONTAINERS = (list, tuple, dict)
SCALARS = frozenset({bool, int, float, str, type(None)})    # static settings: a mode change is not a replacement


def variable_ids(node, ids: list | None = None) -> list[int]:
    """The identities of the objects a module holds (its Variables, Rngs, …; submodules walked into, scalar settings
    skipped), in attribute order: a plain walk of the attributes (~0.2 ms for a 6-layer model, a twentieth of
    `nnx.split`) that tells whether a submodule or a Variable object was replaced since the split."""
    ids = [] if ids is None else ids
    children = (vars(node).values() if isinstance(node, nnx.Module) else node.values() if isinstance(node, dict)
                else node)
    for child in children:
        if isinstance(child, nnx.Module) or type(child) in CONTAINERS:
            variable_ids(child, ids)
        elif type(child) not in SCALARS:
            ids.append(id(child))
    return ids


# model → (its variable_ids, its (module, attribute) pairs of MODE_ATTRIBUTES, {mode: _CompiledModel})
_COMPILED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def compiled(model, forward) -> _CompiledModel | None:
    """The compiled forward of `model` in its current mode (built on first use of that mode); None while what it
    sows is being kept — its attention modules record their maps, or it runs inside `nnx.capture` (each module
    then has a `__captures__` slot) — for `_graph_jit` to run it."""
    identity = variable_ids(model)
    if model not in _COMPILED or _COMPILED[model][0] != identity:     # new, or a submodule/Variable replaced
        # (not the model itself: the cache's value must not hold its weak key alive)
        modules = [(m, a) for _, m in nnx.iter_modules(model) if m is not model for a in MODE_ATTRIBUTES
                   if hasattr(m, a)]
        _COMPILED[model] = identity, modules, {}
    _, modules, by_mode = _COMPILED[model]
    mode = tuple(getattr(m, a) for m, a in modules)
    if hasattr(model, "__captures__") or any(value for (_, a), value in zip(modules, mode) if a == "record_attention"):
        return None
    if mode not in by_mode:
        by_mode[mode] = _CompiledModel(model, forward)
    return by_mode[mode]


def call(model, forward, input_ids, attention_mask, token_type_ids, targets: dict, *, output_hidden_states: bool,
         output_attentions: bool):
    """`forward(model, …)` on host arrays (numpy int32, input_ids None with inputs_embeds in `targets`): bucketed
    when the model allows it and there are no targets, compiled once per (bucket, mode, flags), sliced back."""
    flags = dict(output_hidden_states=output_hidden_states, output_attentions=output_attentions)
    function = compiled(model, forward)
    length = attention_mask.shape[-1]
    plain = function is not None and input_ids is not None and all(v is None for v in targets.values())
    bucket = padded_length(model, length) if plain else length
    if bucket == length:
        inputs = [None if a is None else jax.device_put(a) for a in (input_ids, attention_mask, token_type_ids)]
        if function is None:
            return _graph_jit(forward)(model, *inputs, targets=targets, **flags)
        return function(*inputs, targets, **flags)
    pad_id = getattr(model.config, "pad_token_id", None) or 0
    padded = pad_inputs([input_ids, attention_mask, token_type_ids], [pad_id, 0, 0], bucket)
    out = function(*[jax.device_put(a) for a in padded], targets, **flags)
    axes = function.sequence_axes_of((*padded, targets), out, flags)
    # sliced on the host and put back with device_put: a jax slice (or jnp.asarray) compiles once per real length,
    # the very cost bucketing removes; an output without a sequence axis (pooler_output, logits) is returned as is
    def cut(a, seq):
        if not seq:
            return a
        kept = tuple(slice(0, length) if i in seq else slice(None) for i in range(a.ndim))
        return jax.device_put(np.asarray(a)[kept])
    return jax.tree.map(cut, out, axes)
