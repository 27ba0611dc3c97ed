"""JAX's persistent compilation cache, turned on: a process compiles a shape once per machine, not once per run.

A compiled forward pass of all-MiniLM-L6-v2 takes ~0.3 s to compile on a 2-core CPU, one per bucket length
(models/host.py); a fresh process that finds it in the cache loads it in ~0.07 s. `minibert`'s command line turns
the cache on for every command; a Python program turns it on with

    import minibert
    minibert.enable_compilation_cache()      # before the first call that compiles

This is JAX's own cache (https://docs.jax.dev/en/latest/persistent_compilation_cache.html), keyed by the
compiled program, the jax version and the device: nothing stale is ever loaded. Only the defaults change:

- the folder: `JAX_COMPILATION_CACHE_DIR` when set, else `$XDG_CACHE_HOME/minibert/jax` (`~/.cache/minibert/jax`);
- what is kept: every compile of at least 0.1 s (JAX's default, 1 s, would keep none of a small encoder's);
- the size: at most 1 GiB, the least recently used entries evicted first.

Turn it off with JAX's switch, `JAX_ENABLE_COMPILATION_CACHE=false`.
"""

from __future__ import annotations

import os
from pathlib import Path

import jax
from jax.experimental.compilation_cache import compilation_cache

MIN_COMPILE_SECONDS = 0.1
MAX_BYTES = 2**30


def default_directory() -> Path:
    """`$XDG_CACHE_HOME/minibert/jax`, or `~/.cache/minibert/jax`."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "minibert" / "jax"


def enable_compilation_cache(directory: str | os.PathLike | None = None) -> Path | None:
    """Turn JAX's persistent compilation cache on, in `directory` (default: `JAX_COMPILATION_CACHE_DIR` when set,
    else `default_directory()`). Returns the folder used, or None when `JAX_ENABLE_COMPILATION_CACHE=false` has
    turned the cache off. Safe to call more than once, and after compiles have run: it affects every later compile
    in this process."""
    if not jax.config.jax_enable_compilation_cache:
        return None
    folder = Path(directory or jax.config.jax_compilation_cache_dir or default_directory()).expanduser()
    jax.config.update("jax_compilation_cache_dir", str(folder))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", MIN_COMPILE_SECONDS)
    jax.config.update("jax_compilation_cache_max_size", MAX_BYTES)
    compilation_cache.reset_cache()    # JAX decides whether to use a cache at its first compile: decide again
    return folder
