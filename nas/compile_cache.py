"""JAX's persistent compilation cache, on by default for the ``nas`` command and the API.

Every fine-tuning trial, evaluation and export traces the same few functions at the same shapes; within one
process JAX compiles each once, but a second process (a resumed search, ``--workers``, the next command)
compiled them all again: about 5 of a small search's 13 seconds here. With the cache a later process reads the
compiled executables back from disk. JAX keys each entry by the computation, its shapes, the backend and the
JAX version, so a stale entry is never used; the cache only saves time and never changes a result.

The directory is ``$NAS_COMPILATION_CACHE`` (``off`` turns the cache off), else ``$XDG_CACHE_HOME/nas-compress/
jax`` (``~/.cache/nas-compress/jax``). A directory the user already gave JAX (``JAX_COMPILATION_CACHE_DIR`` or
``jax.config``) is left as it is.
"""

from __future__ import annotations

import os
from pathlib import Path

CACHE_VARIABLE = "NAS_COMPILATION_CACHE"


def cache_directory() -> Path | None:
    """Where compiled executables are kept (None: the cache is off)."""
    chosen = os.environ.get(CACHE_VARIABLE, "").strip()
    if chosen.lower() == "off":
        return None
    if chosen:
        return Path(chosen).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "nas-compress" / "jax"


def enable_compilation_cache() -> Path | None:
    """Points JAX's persistent cache at ``cache_directory()`` unless JAX already has one; returns the directory
    in use. Every compilation is kept (JAX's default keeps only those over a second: ours are smaller)."""
    import jax

    given = jax.config.values.get("jax_compilation_cache_dir")
    if given:
        return Path(given)
    directory = cache_directory()
    if directory is None:
        return None
    # JAX creates the directory when it first compiles, so a command that compiles nothing writes nothing; one
    # it could not create (a read-only home) leaves the cache off rather than warn on every command.
    existing = next(path for path in (directory, *directory.parents) if path.exists())
    if not os.access(existing, os.W_OK):
        return None
    jax.config.update("jax_compilation_cache_dir", str(directory))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    return directory
