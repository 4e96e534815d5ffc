"""Deterministic fakes for tests, yours and snaprag's: no models, no files, no network.

::

    from snaprag import Config, Engine
    from snaprag.testing import EchoGenerator, HashEmbedder, RecordingTelemetry

    engine = Engine(
        Config(index_dir=tmp_path / "index"),
        embedder=HashEmbedder(),          # bag-of-words vectors by feature hashing
        generator=EchoGenerator(),        # cites the hits it is given, streams word by word
        telemetry=RecordingTelemetry(),   # keeps every timing, cache event and error
    )
    engine.ingest([docs_dir])
    assert engine.search("warranty")[0].source.endswith("warranty.md")

They exercise the real pipeline (store, BM25, fusion, cache, events) in milliseconds;
they say nothing about retrieval quality. ``model="hash"`` and ``llm="echo"`` select the
same fakes by name (for a CLI or server under test).
"""

from __future__ import annotations

from .embed.hashing import HashEmbedder
from .generate.echo import EchoGenerator
from .observe.telemetry import RecordingTelemetry

__all__ = ["EchoGenerator", "HashEmbedder", "RecordingTelemetry"]
