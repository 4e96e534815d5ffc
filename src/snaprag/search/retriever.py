"""Hybrid retrieval (the :class:`~.base.Searcher`): dense and BM25 run in parallel, then
their rankings are fused. An index built with two models (the quality profile) has a second
dense ranking from the same query: three lists are fused.

Everything is batched: one embedding call and one matrix product for all queries of a
call, BM25 scored per block of queries, fusion per query over at most ``candidates`` ids.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..config import Config
from ..embed.base import Embedder
from ..embed.models import PRESETS
from ..embed.pair import split_spec, split_vectors
from ..errors import ConfigError
from ..index.base import DocumentStore, SearchingStore
from ..index.factory import choose_vector_index
from ..index.heading_terms import with_query_terms
from ..index.tokenize import has_hangul, tokenize_many
from ..types import Filters, Hit, SearchBatch, StageTimings
from . import fusion
from .base import MODES, Reranker
from .snapshot import LiveSnapshot, Snapshot, live_snapshot, load_snapshot

if TYPE_CHECKING:
    from concurrent.futures import ThreadPoolExecutor


def fusion_weights(query: str, config: Config) -> list[float]:
    """``[dense, BM25]`` weights for fusing this query's two rankings.

    Queries containing Hangul use their own pair (``hangul_dense_weight``,
    ``hangul_bm25_weight``: 0.5 / 0.5, tuned on half of the KorQuAD dev articles, where
    0.4 / 0.6 scored .9726 and 0.5 / 0.5 .9753 nDCG@10), all others ``dense_weight`` /
    ``bm25_weight`` (0.4 / 0.6, tuned on SciFact train).
    """
    if has_hangul(query):
        return [config.hangul_dense_weight, config.hangul_bm25_weight]
    return [config.dense_weight, config.bm25_weight]


class Retriever:
    """Searches one index; reloads its snapshot whenever the index version changes.

    Thread-safe: one snapshot is built per index version, by the first thread that needs
    it, while the others wait for it.
    """

    def __init__(
        self,
        store: DocumentStore,
        embedder: Embedder,
        config: Config,
        dim: int,
        vector_dtype: str,
        reranker: Reranker | None = None,
        vector_index: str | None = None,
        model: str | None = None,
        parts: tuple[int, int] | None = None,
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.config = config
        self.dim = dim
        self.vector_dtype = vector_dtype
        self.reranker = reranker
        #: the vector index backend (None: config.dense_backend, ``auto`` by size)
        self.vector_index = vector_index
        #: the embedding model this retriever embeds queries with (checked on every reload)
        self.model = model
        self._snapshot: Snapshot | LiveSnapshot | None = None
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        #: snapshots built or loaded so far (one per index version; tests count them)
        self.snapshot_loads = 0
        #: the two models' dimensions when the index is built with a pair of models
        self.parts = parts
        spec = getattr(embedder, "spec", "")
        if parts is not None:
            spec = (split_spec(spec) or (spec, ""))[0]  # the first model's blindness counts
        preset = PRESETS.get(spec)
        self.english_only = preset is not None and preset.languages == "en"

    @property
    def snapshot_dir(self) -> Path:
        return self.config.index_dir / "snapshots"

    def snapshot(self) -> Snapshot | LiveSnapshot:
        version = self.store.version
        snap = self._snapshot
        if snap is None or snap.version != version:
            with self._lock:
                snap = self._snapshot
                if snap is None or snap.version != version:
                    self._check_model()
                    snap = self._load(version)
                    self.snapshot_loads += 1
                    self._snapshot = snap
                    if self.config.low_memory:
                        from .. import system

                        # what reading the index freed, and the library code only that ran
                        # (parsing, building the vocabulary): searching maps back its own
                        system.release_free_memory()
                        system.release_library_pages()
        return snap

    def _load(self, version: int) -> Snapshot | LiveSnapshot:
        if isinstance(self.store, SearchingStore):  # searches where its data lives
            if self.parts is not None:
                raise ConfigError(
                    f"store {self.config.store!r} cannot search a second model's vectors; "
                    "use the sqlite store for the quality profile"
                )
            return live_snapshot(self.store, version)
        setting = self.vector_index or self.config.dense_backend
        n = self.store.counts()["chunks"] if setting == "auto" else 0
        return load_snapshot(
            self.store,
            self.snapshot_dir,
            version,
            self.dim,
            self.vector_dtype,
            choose_vector_index(setting, n, self.config.hnsw_min_chunks),
            self.config.effective_threads,
            positioned=self.config.low_memory,
            parts=self.parts,
        )

    def _check_model(self) -> None:
        """The index may have been re-modelled by another process while it had no chunks:
        its vectors must never be searched with another model's query vectors."""
        stored = self.store.get_meta("model")
        dim = int(self.store.get_meta("dim") or self.dim)
        if (self.model and stored and stored != self.model) or dim != self.dim:
            raise ConfigError(
                f"the index {self.config.index_dir} is now built with model {stored!r} "
                f"({dim}-d), not {self.model!r} ({self.dim}-d): another process re-created "
                "it; open it again (restart the server or command) to search it"
            )

    def warm_up(self) -> None:
        self.embedder.warm_up()
        if self.reranker is not None:
            self.reranker.warm_up()
        self.snapshot()

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self.embedder.embed_queries(texts)

    def search_many(
        self,
        queries: Sequence[str],
        k: int = 10,
        filters: Filters | None = None,
        mode: str = "hybrid",
        _attempt: int = 0,
    ) -> SearchBatch:
        if mode not in MODES:
            raise ConfigError(f"mode must be one of {', '.join(MODES)}; got {mode!r}")
        if k < 1:
            raise ConfigError(f"k must be >= 1, got {k}")
        timings = StageTimings()
        if not queries:
            return SearchBatch([], timings)
        t0 = time.perf_counter()
        snap = self.snapshot()
        row_filter = snap.row_filter(filters, self.store)
        timings.add("load", (time.perf_counter() - t0) * 1000)
        # with a reranker, fusion keeps more hits than asked, for the second stage to reorder
        limit = max(k, self.config.rerank_top_n) if self.reranker is not None else k
        n_cand = max(self.config.candidates, limit)

        def lexical() -> list[tuple[np.ndarray, np.ndarray]]:
            t = time.perf_counter()
            tokens = with_query_terms(tokenize_many(list(queries)), queries)
            timings.add("bm25_tokenize", (time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            out = snap.bm25.search_many(tokens, n_cand, filter_mask=row_filter)
            timings.add("bm25", (time.perf_counter() - t) * 1000)
            return out

        lexical_future = None
        if mode != "dense":
            # on one thread (the edge profile) BM25 runs inline: a second thread would only
            # take turns with the query's own work on the same core
            parallel = mode == "hybrid" and len(snap) and self.config.effective_threads > 1
            pool = self._executor() if parallel else None
            try:
                lexical_future = pool.submit(lexical) if pool is not None else None
            except RuntimeError:  # closed by another thread meanwhile: score it here
                lexical_future = None
            if lexical_future is None:
                lexical_lists = lexical()
        dense_lists: list[tuple[np.ndarray, np.ndarray]] = []
        second_lists: list[tuple[np.ndarray, np.ndarray]] | None = None
        if mode != "bm25":
            t = time.perf_counter()
            qvec = self.embedder.embed_queries(list(queries))
            timings.add("embed", (time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            second = getattr(snap, "second", None)
            if self.parts is not None and second is not None:
                qvec, qvec2 = split_vectors(qvec, self.parts)
                second_lists = second.search_many(qvec2, n_cand, row_filter)
            dense_lists = snap.dense.search_many(qvec, n_cand, row_filter)
            timings.add("dense", (time.perf_counter() - t) * 1000)
        if lexical_future is not None:
            lexical_lists = lexical_future.result()

        t = time.perf_counter()
        fused: list[tuple[np.ndarray, np.ndarray]] = []
        cfg = self.config
        for i, query in enumerate(queries):
            if second_lists is not None and mode != "bm25":
                lexical = lexical_lists[i] if mode != "dense" else None
                lists, weights = self._three_way(query, dense_lists[i], second_lists[i], lexical)
            elif mode == "dense":
                fused.append((dense_lists[i][0][:limit], dense_lists[i][1][:limit]))
                continue
            elif mode == "bm25" or self.dense_blind_to(query):
                fused.append((lexical_lists[i][0][:limit], lexical_lists[i][1][:limit]))
                continue
            else:
                lists = [dense_lists[i], lexical_lists[i]]
                weights = fusion_weights(query, cfg)
            if cfg.fusion == "rrf":
                fused.append(fusion.rrf(lists, weights, cfg.rrf_k, limit))
            else:
                fused.append(fusion.weighted(lists, weights, limit))
        timings.add("fuse", (time.perf_counter() - t) * 1000)

        t = time.perf_counter()
        hits = self._hits(snap, fused)
        timings.add("fetch", (time.perf_counter() - t) * 1000)
        if self.store.version != snap.version and _attempt < 2:
            # a write landed between the snapshot and the fetch: a fetched row id may now
            # belong to another chunk (SQLite reuses deleted ids); search the new version
            return self.search_many(queries, k, filters, mode, _attempt + 1)
        if self.reranker is not None:
            t = time.perf_counter()
            hits = [
                self.reranker.rerank(q, hs, self.config.rerank_top_n)[:k]
                for q, hs in zip(queries, hits, strict=True)
            ]
            timings.add("rerank", (time.perf_counter() - t) * 1000)
        return SearchBatch(hits, timings)

    def _three_way(
        self,
        query: str,
        dense: fusion.Ranked,
        second: fusion.Ranked,
        lexical: fusion.Ranked | None,
    ) -> tuple[list[fusion.Ranked], list[float]]:
        """The lists and weights of an index built with two models: ``[first dense, BM25,
        second dense]`` (BM25 left out in ``dense`` mode). The first model's list is left
        out where it cannot read the query (an English-only first model, Korean text): the
        second model then takes its weight, as the one dense model that reads the query."""
        weights = [*fusion_weights(query, self.config), self.config.second_dense_weight]
        lists = [dense, lexical, second]
        if self.dense_blind_to(query):
            weights[0], weights[2] = 0.0, weights[0]
        keep = [i for i, ranked in enumerate(lists) if ranked is not None and weights[i] > 0]
        return [lists[i] for i in keep], [weights[i] for i in keep]  # type: ignore[misc]

    def dense_blind_to(self, query: str) -> bool:
        """Whether the embedding model cannot read this query's language.

        An English-only model (the ``minilm`` preset) maps Korean text to noise; fusing that
        noise with BM25 costs far more than it adds (KorQuAD dev nDCG@10: BM25 .955, RRF with
        MiniLM .526), so such queries use BM25 alone.
        """
        return self.english_only and has_hangul(query)

    def _executor(self) -> ThreadPoolExecutor:
        if self._pool is None:
            with self._lock:
                if self._pool is None:
                    # imported on first use: one thread (the edge profile) never needs it
                    from concurrent.futures import ThreadPoolExecutor

                    # one per CPU: a server runs a batch as parts side by side, each with
                    # its own BM25 list
                    self._pool = ThreadPoolExecutor(
                        max_workers=max(1, self.config.effective_threads),
                        thread_name_prefix="snaprag-bm25",
                    )
        return self._pool

    def _hits(
        self, snap: Snapshot | LiveSnapshot, fused: list[tuple[np.ndarray, np.ndarray]]
    ) -> list[list[Hit]]:
        wanted = _sorted_unique(np.concatenate([r for r, _ in fused])) if fused else np.zeros(0)
        rows = self.store.chunk_rows(snap.chunk_ids(wanted.astype(np.int64)).tolist())
        out: list[list[Hit]] = []
        for positions, scores in fused:
            hits = []
            chunk_ids = snap.chunk_ids(positions.astype(np.int64)).tolist()
            for chunk_id, score in zip(chunk_ids, scores.tolist(), strict=True):
                row = rows.get(int(chunk_id))
                if row is None:  # deleted after the snapshot was taken
                    continue
                hits.append(
                    Hit(
                        id=f"{row.doc_id}#{row.seq}",
                        doc_id=row.doc_id,
                        source=row.source,
                        page=row.page,
                        score=float(score),
                        text=row.text,
                        title=row.title,
                        type=row.type,
                        section=row.section,
                    )
                )
            out.append(hits)
        return out

    def close(self) -> None:
        """Stop the BM25 worker; searches still running finish (scoring BM25 inline)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False)


def _sorted_unique(values: np.ndarray) -> np.ndarray:
    """``np.unique`` of a 1-d array, without it: ``np.unique`` imports ``numpy.ma`` (to
    check for a masked array), 1.3 MiB resident in a process that needs nothing else of it."""
    values = np.sort(values)
    if values.size < 2:
        return values
    return values[np.concatenate(([True], values[1:] != values[:-1]))]
