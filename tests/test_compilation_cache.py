"""minibert/compilation_cache.py: JAX's persistent cache on, in the right folder, with minibert's thresholds."""

import jax
import jax.numpy as jnp
import pytest
from jax.experimental.compilation_cache import compilation_cache as jax_cache

from minibert import compilation_cache

SETTINGS = ("jax_enable_compilation_cache", "jax_compilation_cache_dir", "jax_persistent_cache_min_compile_time_secs",
            "jax_compilation_cache_max_size")


@pytest.fixture
def jax_settings():
    """JAX's cache settings as the test suite has them (the cache off: tests/conftest.py), restored after."""
    before = {name: getattr(jax.config, name) for name in SETTINGS}
    yield
    for name, value in before.items():
        jax.config.update(name, value)
    jax_cache.reset_cache()


def test_compiles_are_written_to_the_folder_and_read_back(jax_settings, tmp_path):
    jax.config.update("jax_enable_compilation_cache", True)
    assert compilation_cache.enable_compilation_cache(tmp_path) == tmp_path
    assert jax.config.jax_persistent_cache_min_compile_time_secs == compilation_cache.MIN_COMPILE_SECONDS
    assert jax.config.jax_compilation_cache_max_size == compilation_cache.MAX_BYTES
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)     # this test's compile is quick

    def function(x):
        return jnp.tanh(x) * 3.25 + 1.5

    assert not list(tmp_path.iterdir())
    expected = jax.jit(function)(jnp.arange(7.0))
    assert list(tmp_path.iterdir()), "the compile was not written to the cache"
    jax.clear_caches()                  # as a new process: only the folder remembers the compile
    hits = []

    def listener(event, **_):
        if event == "/jax/compilation_cache/cache_hits":
            hits.append(event)

    jax.monitoring.register_event_listener(listener)
    try:
        assert (jax.jit(function)(jnp.arange(7.0)) == expected).all()
    finally:
        jax.monitoring.unregister_event_listener(listener)
    assert hits


def test_default_folder_follows_xdg_then_jax_variable(jax_settings, tmp_path, monkeypatch):
    jax.config.update("jax_enable_compilation_cache", True)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    jax.config.update("jax_compilation_cache_dir", None)
    assert compilation_cache.enable_compilation_cache() == tmp_path / "xdg" / "minibert" / "jax"
    jax.config.update("jax_compilation_cache_dir", str(tmp_path / "chosen"))     # JAX_COMPILATION_CACHE_DIR
    assert compilation_cache.enable_compilation_cache() == tmp_path / "chosen"


def test_jax_switch_turns_it_off(jax_settings, tmp_path):
    jax.config.update("jax_enable_compilation_cache", False)              # JAX_ENABLE_COMPILATION_CACHE=false
    assert compilation_cache.enable_compilation_cache(tmp_path) is None
    assert jax.config.jax_compilation_cache_dir != str(tmp_path)
