"""Profiles: named sets of config defaults for a kind of machine.

A profile only moves defaults. In rising priority a value comes from the field's default,
the profile, the TOML config file, ``SNAPRAG_<FIELD>`` variables and options, so
``--profile edge --threads 2`` still gets two threads. The profile itself is chosen like any
setting: ``--profile edge``, ``SNAPRAG_PROFILE=edge`` or ``profile = "edge"`` under
``[index]`` in the config file. :meth:`snaprag.config.Config.sources` names the profile as
the origin of the values it set (``profile edge``).

=============  =========================================================================
``default``    the settings as documented on each field
``edge``       a small device: int8 codes memory-mapped from the snapshot, the top
               candidates rescored from its float16 vectors (``dense_backend =
               "int8"``), one thread, ``low_memory`` (no ONNX Runtime arena; load-time
               memory and library pages handed back; rescored rows and BM25 postings
               read from the files, out of the process's RSS), small embedding batches
               and a small memory cache tier; no Redis unless ``redis_url`` is set. Kiwi
               (Korean analysis, ~1 s and ~300 MB) loads only when Korean text is
               tokenized, as in every profile.
``quality``    a second embedding model (``second_model = "auto"``: ``e5-small`` beside
               ``minilm``; none beside ``e5-small``) whose passage vectors are stored at
               ingest, fused with BM25 and the first model's list at query time: two
               query embeddings and one more matrix product per query, about three times
               the ingest time (docs/benchmarks.md, "Quality profile")
=============  =========================================================================
"""

from __future__ import annotations

from typing import Any

from .errors import ConfigError

DEFAULT_PROFILE = "default"

#: the settings each profile changes, by field name (docs/benchmarks.md, "Edge profile",
#: has the measurements behind the edge values)
PROFILES: dict[str, dict[str, Any]] = {
    DEFAULT_PROFILE: {},
    "edge": {
        # int8 codes are a quarter of float32 in memory; the top candidates are rescored
        # from float16 vectors that stay on disk
        "dense_backend": "int8",
        # one core: no inference or BM25 thread competes with the query's own
        "threads": 1,
        # no ONNX Runtime arena; load-time copies and library code handed back, what a
        # query reads a little of read from the snapshot's files (~40 MiB in all)
        "low_memory": True,
        # activations of one batch grow with its size (attention: batch x 12 x 192^2
        # floats), so small batches bound the memory of an ingest
        "embed_batch_size": 8,
        "cache_memory_mb": 8.0,
        "redis_url": None,
    },
    "quality": {
        # the other preset's passage vectors, stored next to the first's at ingest
        "second_model": "auto",
    },
}


def apply_profile(values: dict[str, Any], origin: dict[str, str]) -> None:
    """Add the chosen profile's settings (``values["profile"]``) to ``values`` where the
    file, a variable or an option set none, recording ``profile NAME`` in ``origin``. An
    unknown name adds nothing: validating the config then names it and where it was set."""
    name = values.get("profile", DEFAULT_PROFILE)
    for field, value in PROFILES.get(name, {}).items():
        if field not in values:
            values[field] = value
            origin[field] = f"profile {name}"


def profile_settings(name: str) -> dict[str, Any]:
    """The settings profile ``name`` changes; an unknown name lists the valid ones."""
    found = PROFILES.get(name)
    if found is None:
        raise ConfigError(f"profile must be one of {', '.join(PROFILES)}; got {name!r}")
    return dict(found)
