"""The query cache as a layer: a caching searcher and a caching answerer that wrap the
plain ones, so neither the engine nor the pipeline holds cache logic.

Keys (see :mod:`.query_cache`): a result key is the *scope* (index id, index generation,
settings fingerprint), the normalized query and the call's parameters; an answer key adds
the generator's fingerprint. The scope is read on every call (one SQLite statement), so a
write by any process makes every older entry unreachable at once.

With the semantic cache on, a query that misses its exact key may reuse the entry of the
nearest cached query of the same scope that asks the same thing (see :mod:`.semantic`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from ..errors import SnapragError
from ..generate.base import Answerer
from ..search.base import Searcher
from ..types import AnswerEvent, Filters, SearchBatch, SearchHits, StageTimings
from .answers import answer_from_cache, dump_answer
from .base import Cache
from .normalize import normalize_query
from .tiered import REQUESTS


def _ms(since: float) -> float:
    return (time.perf_counter() - since) * 1000


def _filters_key(filters: Filters | None) -> tuple[str | None, str | None] | None:
    return filters.key if filters else None


def semantic_lookup(
    cache: Cache,
    searcher: Searcher,
    namespace: str,
    scope: str,
    queries: Sequence[str],
    norms: Sequence[str],
    missing: Sequence[int],
    found: list[Any],
    where: list[str | None],
) -> dict[int, np.ndarray]:
    """Fill ``found[i]`` (for ``i`` in ``missing``) from the nearest cached query of
    ``scope`` that asks the same thing; returns the query vectors computed on the way,
    to add the new entries (the search of a miss embeds again, from the embedding cache)."""
    # an English-only model cannot compare Korean queries: exact keys only for those
    comparable = [i for i in missing if not searcher.dense_blind_to(queries[i])]
    if not comparable:
        return {}
    qvec = searcher.embed_queries([queries[i] for i in comparable])
    vectors = dict(zip(comparable, qvec, strict=True))
    alias: dict[int, str] = {}
    for i in comparable:
        match = cache.semantic.lookup(scope, norms[i], vectors[i])
        if match is not None:
            alias[i] = match[0]
    if alias:
        got = cache.tiered.get_many(namespace, list(alias.values()), record=False)
        for i, value in zip(alias, got, strict=True):
            found[i] = value
            if value is not None:
                where[i] = "semantic"
    hits = sum(1 for i in alias if found[i] is not None)
    cache.stats.record("semantic", namespace, hits, len(comparable) - hits)
    return vectors


def _batch_tier(where: Sequence[str | None]) -> str | None:
    """The tier that answered a whole batch, ``mixed`` if several did, None on misses."""
    tiers = set(where)
    if tiers == {None} or not tiers:
        return None
    return tiers.pop() if len(tiers) == 1 else "mixed"


class CachedSearcher:
    """A :class:`~snaprag.search.base.Searcher` whose results go through the cache."""

    def __init__(self, inner: Searcher, cache: Cache, scope: Callable[[], str]) -> None:
        self.inner = inner
        self.cache = cache
        self.scope = scope

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self.inner.embed_queries(texts)

    def dense_blind_to(self, query: str) -> bool:
        return self.inner.dense_blind_to(query)

    def warm_up(self) -> None:
        self.inner.warm_up()

    def close(self) -> None:
        self.inner.close()

    def _keys(
        self, queries: Sequence[str], k: int, filters: Filters | None, mode: str
    ) -> tuple[list[str], list[str], tuple[Any, ...], str]:
        norms = [normalize_query(q) for q in queries]
        scope = self.scope()
        params = (k, mode, _filters_key(filters))
        keys = [self.cache.key("retrieval", scope, n, params) for n in norms]
        return norms, keys, params, f"{scope}{params}"

    def cached(
        self,
        queries: Sequence[str],
        k: int = 10,
        filters: Filters | None = None,
        mode: str = "hybrid",
        memory_only: bool = False,
    ) -> SearchBatch | None:
        """The cached hits of every query, without searching: None (and nothing counted)
        unless every query is cached. ``memory_only``: ask the in-process tier alone (and the
        index generation, one WAL read that never waits on a writer), which a server does
        on its event loop."""
        found = self.cached_each(queries, k, filters, mode, memory_only, partial=False)
        if not found or any(hits is None for hits in found):
            return None
        timings = found[0].timings  # one look-up for all: the same timings, bar the tier
        timings.cache_tier = _batch_tier([hits.timings.cache_tier for hits in found])
        return SearchBatch([list(hits) for hits in found], timings)

    def cached_each(
        self,
        queries: Sequence[str],
        k: int = 10,
        filters: Filters | None = None,
        mode: str = "hybrid",
        memory_only: bool = False,
        partial: bool = True,
    ) -> list[SearchHits | None]:
        """The cached hits of each query (with the tier that answered it), None where a
        query is not cached, in one look-up per tier: a server gathers the probes of
        concurrent requests into one call. Only the queries found are counted, as a miss
        is counted by the search that follows it. ``partial`` False: nothing is counted
        unless every query was found."""
        queries = list(queries)
        cache = self.cache
        tiered = cache.tiered
        if not queries or (memory_only and tiered.memory is None):
            return [None] * len(queries)
        t = time.perf_counter()
        norms, keys, params, _ = self._keys(queries, k, filters, mode)
        where: list[str | None] = []
        if memory_only:
            found: list[Any] = [tiered.memory.get(key) for key in keys]
            where = ["memory" if v is not None else None for v in found]
        else:
            found = tiered.get_many("retrieval", keys, record=False, where=where)
        hit = [i for i, v in enumerate(found) if v is not None]
        ms = _ms(t)
        if hit and (partial or len(hit) == len(found)):
            # counted as the look-up of search_many would have: requests, then per tier
            tiered.stats.record(REQUESTS, "retrieval", len(hit), 0)
            left = len(hit)
            for tier in tiered.tier_names:
                if not left:
                    break
                hits = sum(1 for i in hit if where[i] == tier)
                tiered.stats.record(tier, "retrieval", hits, left - hits)
                left -= hits
            cache.log_queries(
                "search",
                [norms[i] for i in hit],
                params,
                [queries[i] for i in hit],
                flush=not memory_only,
            )
        return [
            SearchHits(list(v), StageTimings({"cache": ms}, where[i])) if v is not None else None
            for i, v in enumerate(found)
        ]

    def search_many(
        self,
        queries: Sequence[str],
        k: int = 10,
        filters: Filters | None = None,
        mode: str = "hybrid",
        log: bool = True,
    ) -> SearchBatch:
        """Cached hits where the same (normalized) query was searched on this index
        generation with the same settings; the rest searched in one batch. ``log`` False:
        not counted in the query log (cache warming)."""
        queries = list(queries)
        if not queries:
            return self.inner.search_many(queries, k, filters, mode)
        cache = self.cache
        timings = StageTimings()
        t = time.perf_counter()
        norms, keys, params, semantic_scope = self._keys(queries, k, filters, mode)
        timings.add("normalize", _ms(t))
        t = time.perf_counter()
        where: list[str | None] = []
        found: list[Any] = cache.tiered.get_many("retrieval", keys, where=where)
        missing = [i for i, v in enumerate(found) if v is None]
        vectors: dict[int, np.ndarray] = {}
        if cache.semantic is not None and mode != "bm25" and missing:
            vectors = semantic_lookup(
                cache, self.inner, "retrieval", semantic_scope, queries, norms, missing, found,
                where,
            )  # fmt: skip
            missing = [i for i in missing if found[i] is None]
        timings.add("cache", _ms(t))
        timings.cache_tier = _batch_tier(where)
        if missing:
            fresh = self.inner.search_many([queries[i] for i in missing], k, filters, mode)
            timings.merge(fresh.timings)
            items = []
            for j, i in enumerate(missing):
                found[i] = tuple(fresh[j])
                items.append((keys[i], found[i]))
                if i in vectors:
                    cache.semantic.add(semantic_scope, norms[i], vectors[i], keys[i])
            cache.tiered.put_many("retrieval", items)
        if log:
            cache.log_queries("search", norms, params, queries)
        return SearchBatch([list(v) for v in found], timings)


class CachedAnswerer:
    """Answers through the answer cache: a repeated question (same index generation,
    settings, generator, ``k`` and filters) is replayed as the same events."""

    def __init__(
        self,
        inner: Answerer,
        cache: Cache,
        searcher: Searcher,
        scope: Callable[[], str],
        generator_fingerprint: Callable[[], str],
    ) -> None:
        self.inner = inner
        self.cache = cache
        self.searcher = searcher
        self.scope = scope
        self.generator_fingerprint = generator_fingerprint

    def answer_scope(self, k: int, filters: Filters | None) -> str:
        """Index generation and settings, the generator's fingerprint, k and filters."""
        params = (k, _filters_key(filters))
        return f"{self.scope()}|answer|{self.generator_fingerprint()}|{params}"

    def answer_key(self, question: str, k: int, filters: Filters | None) -> str:
        return self.cache.key("answer", self.answer_scope(k, filters), normalize_query(question))

    def ask_events(
        self, question: str, k: int = 5, filters: Filters | None = None, log: bool = True
    ) -> Iterator[AnswerEvent]:
        cache = self.cache
        started = time.perf_counter()
        params = (k, _filters_key(filters))
        norm = normalize_query(question)
        normalize_ms = _ms(started)
        try:
            scope = self.answer_scope(k, filters)
            key = cache.key("answer", scope, norm)
        except SnapragError as exc:
            yield AnswerEvent("error", error=exc)
            return
        if log:
            cache.log_queries("ask", [norm], params, [question])
        where: list[str | None] = []
        found: list[Any] = cache.tiered.get_many("answer", [key], where=where)
        vectors: dict[int, np.ndarray] = {}
        if found[0] is None and cache.semantic is not None:
            try:
                vectors = semantic_lookup(
                    cache, self.searcher, "answer", scope, [question], [norm], [0], found, where
                )
            except SnapragError as exc:
                yield AnswerEvent("error", error=exc)
                return
        data = found[0]
        if data is not None:
            answer = answer_from_cache(data, question, _ms(started))
            answer.timings.stages["normalize"] = normalize_ms
            answer.timings.cache_tier = where[0]
            yield from answer.events()
            return
        lookup_ms = _ms(started) - normalize_ms
        for event in self.inner.ask_events(question, k, filters):
            if event.kind == "done" and event.answer is not None:
                event.answer.timings.add("normalize", normalize_ms)
                event.answer.timings.add("cache", lookup_ms)
                event.answer.timings.stages["total"] = _ms(started)  # look-up included
                cache.tiered.put("answer", key, dump_answer(event.answer))
                if 0 in vectors:
                    cache.semantic.add(scope, norm, vectors[0], key)
            yield event


def warm(cache: Cache, searcher: Any, answerer: Any, top: int) -> list[dict[str, Any]]:
    """Run the ``top`` most frequent logged queries through the caching ``searcher`` and
    ``answerer`` (not counted in the query log), so their results are cached.

    Returns the warmed queries (``kind``, ``text``, ``count``, ``params``), most frequent
    first; an answer that failed is not cached, so not listed.
    """
    entries = cache.top_queries(top)
    groups: dict[tuple[Any, ...], list[str]] = {}
    for entry in entries:
        if entry["kind"] == "search":
            k, mode, fkey = entry["params"]
            key = (k, mode, tuple(fkey) if fkey else None)
            groups.setdefault(key, []).append(entry["text"])
    for (k, mode, fkey), texts in groups.items():
        filters = Filters(source=fkey[0], type=fkey[1]) if fkey else None
        for start in range(0, len(texts), 64):
            searcher.search_many(texts[start : start + 64], k, filters, mode, log=False)
    warmed = [e for e in entries if e["kind"] == "search"]
    for entry in entries:
        if entry["kind"] != "ask":
            continue
        k, fkey = entry["params"]
        filters = Filters(source=fkey[0], type=fkey[1]) if fkey else None
        events = list(answerer.ask_events(entry["text"], k, filters, log=False))
        if events and events[-1].kind == "done":
            warmed.append(entry)
    order = {id(e): i for i, e in enumerate(entries)}
    return sorted(warmed, key=lambda e: order[id(e)])
