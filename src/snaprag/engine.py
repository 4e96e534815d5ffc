"""The engine: a thin, thread-safe facade over the parts that ingest, search and answer.

Every front end (the CLI, the HTTP server, the Python API) calls this class and nothing
below it::

    from snaprag import Engine

    engine = Engine.open("./.snaprag")
    engine.ingest(["docs/"])
    for hit in engine.search("how long is the warranty?", k=5):
        print(hit.score, hit.source, hit.page)
    print(engine.ask("How long is the warranty?").text)

The parts (one contract each, see ``docs/architecture.md``) are built from the config by
their factories, or injected::

    Engine(config, store=..., vector_index="hnsw", embedder=HashEmbedder(),
           generator=EchoGenerator(), cache=..., telemetry=...)

Each part is built exactly once, under one lock, by whichever thread needs it first; the
others wait for it. The engine holds no retrieval, caching or generation logic itself.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .admin import EngineAdmin
from .cache.base import Cache
from .config import Config
from .embed.base import Embedder
from .embed.models import canonical_name
from .embed.pair import with_second_model
from .errors import ConfigError, GenerationError, SnapragError
from .generate.base import Answerer, Generator
from .index import layout
from .index.base import DocumentStore
from .index.retokenize import upgrade_terms
from .lookups import CacheLookups
from .observe.base import Telemetry
from .observe.telemetry import NullTelemetry
from .search.base import Reranker, Searcher
from .search.query import check_batch, search_checked
from .types import Answer, AnswerEvent, Filters, SearchBatch, SearchHits

if TYPE_CHECKING:
    from .ingest.job import IngestReport, Progress
    from .ingest.runners import ProcessRunner
    from .search.retriever import Retriever


DEFAULT_MODEL = "minilm"
_UNSET: Any = object()


class Engine(EngineAdmin, CacheLookups):
    """Ingest, search and answer over one index directory (created on first ingest)."""

    def __init__(
        self,
        config: Config,
        *,
        store: DocumentStore | None = None,
        vector_index: str | None = None,
        embedder: Embedder | None = None,
        reranker: Reranker | None = None,
        generator: Generator | None = None,
        cache: Cache | None = _UNSET,
        telemetry: Telemetry | None = None,
    ) -> None:
        """Parts left out are built from ``config`` when first needed.

        ``vector_index`` names the dense backend (``exact``, ``hnsw``; default
        ``config.dense_backend``): the engine rebuilds it for every index version, so it
        takes a backend name rather than an instance. ``cache=None`` turns the query
        cache off; leave it out to build it from the config.
        """
        self.config = config
        self.telemetry: Telemetry = telemetry or NullTelemetry()
        # _UNSET: not built yet (None is a part too: no cache, no reranker)
        self._store: Any = store if store is not None else _UNSET
        self._store_checked = False
        self._vector_index = vector_index
        self._embedder: Any = embedder if embedder is not None else _UNSET
        self._injected_embedder = embedder is not None
        self._reranker: Any = reranker if reranker is not None else _UNSET
        self._generator: Any = generator if generator is not None else _UNSET
        self._cache: Any = cache
        self._retriever: Any = _UNSET
        self._searcher: Any = _UNSET
        self._answerer: Any = _UNSET
        self._settings_fingerprint: str | None = None
        #: the model picked for a new index from its files' text (no model named)
        self._auto_model: str | None = None
        self._lock = threading.RLock()

    @classmethod
    def open(cls, path: str | Path | None = None, **settings: Any) -> Engine:
        """Open (lazily) the index at ``path`` (default ``$SNAPRAG_INDEX`` or ``./.snaprag``).

        ``settings`` override :class:`~snaprag.config.Config` fields, e.g. ``model="e5-small"``.
        """
        return cls(Config.from_env(index_dir=path, **settings))

    # ------------------------------------------------------------------ parts
    def _once(self, attr: str, build: Callable[[], Any]) -> Any:
        """``self.<attr>``, built by ``build`` exactly once (double-checked, one lock)."""
        value = getattr(self, attr)
        if value is _UNSET:
            with self._lock:
                value = getattr(self, attr)
                if value is _UNSET:
                    value = build()
                    setattr(self, attr, value)
        return value

    @property
    def db_path(self) -> Path:
        return self.config.index_dir / layout.DB_NAME

    def require_index(self) -> None:
        """Raise a clear error when there is no index yet (nothing is created)."""
        self.store  # noqa: B018 - opening it is the check

    @property
    def store(self) -> DocumentStore:
        """The document store (the index must exist: see :meth:`ingest`)."""
        return self._open_store(create=False)

    def _open_store(self, create: bool) -> DocumentStore:
        def build() -> DocumentStore:
            from .index.factory import open_store

            store = open_store(self.config, create)  # missing and not create: says what to do
            try:
                self._check_settings(store)
            except ConfigError:
                store.close()
                raise
            upgrade_terms(store)
            self._store_checked = True
            return store

        store = self._once("_store", build)
        if not self._store_checked:  # an injected store: checked like an opened one, once
            with self._lock:
                if not self._store_checked:
                    self._check_settings(store)
                    upgrade_terms(store)
                    self._store_checked = True
        return store

    def _index_exists(self) -> bool:
        from .index.factory import store_exists

        return self._store is not _UNSET or store_exists(self.config)

    def _check_settings(self, store: DocumentStore) -> None:
        layout.check_model(store, self._wanted_model(), self.config.index_dir)
        layout.check_second_model(store, self.config.second_model, self.config.index_dir)

    def _wanted_model(self) -> str | None:
        """The model asked for: the config's, or the injected embedder's."""
        if self.config.model:
            return with_second_model(canonical_name(self.config.model), self.config.second_model)
        if self._injected_embedder:
            return getattr(self._embedder, "spec", None) or self._embedder.name
        return None

    @property
    def model_name(self) -> str:
        wanted = self._wanted_model()
        if wanted:
            return wanted
        if self._auto_model:
            return with_second_model(self._auto_model, self.config.second_model)
        stored = self._store.get_meta("model") if self._store is not _UNSET else None
        if stored is None and self._index_exists():
            stored = self.store.get_meta("model")
        # an index keeps its model: a quality profile over an index built without the
        # second model is refused by _check_settings, not silently half-applied
        return stored or with_second_model(DEFAULT_MODEL, self.config.second_model)

    @property
    def embedder(self) -> Embedder:
        from .embed.factory import create_embedder

        return self._once("_embedder", lambda: create_embedder(self.model_name, self.config))

    @property
    def reranker(self) -> Reranker | None:
        """The optional second stage (``rerank_model`` / ``rescore_model``)."""
        from .search.factory import create_reranker

        return self._once("_reranker", lambda: create_reranker(self.config))

    @property
    def cache(self) -> Cache | None:
        """The query cache (None when ``cache`` is off or there is no index yet)."""
        if self._cache is _UNSET and not self._index_exists():
            return None  # built once there is an index to key it by

        def build() -> Cache | None:
            from .cache.factory import create_cache

            store = self.store
            cache = create_cache(
                self.config,
                self.config.index_dir,
                store.get_meta("index_id") or "",
                read_only=store.read_only,
            )
            if cache is not None:
                cache.stats.listener = self.telemetry.cache_event
            return cache

        return self._once("_cache", build)

    @property
    def retriever(self) -> Retriever:
        """The plain hybrid searcher (no cache): query embeddings are still cached."""

        def build() -> Retriever:
            from .search.factory import create_retriever

            store = self.store
            model = store.get_meta("model") or self.model_name
            return create_retriever(
                store,
                self.embedder,
                self.config,
                self.cache,
                self.reranker,
                self._vector_index,
                model,
            )

        return self._once("_retriever", build)

    @property
    def searcher(self) -> Searcher:
        """What ``search`` calls: the retriever, through the query cache when it is on."""

        def build() -> Searcher:
            cache = self.cache
            if cache is None:
                return self.retriever
            from .cache.layer import CachedSearcher

            return CachedSearcher(self.retriever, cache, self._scope)

        return self._once("_searcher", build)

    @property
    def generator(self) -> Generator:
        """What writes answers (``config.llm``): built on first use, its model loaded lazily.

        Its ``fingerprint`` names the model, prompt version, sampling and context budget.
        """
        from .generate.factory import create_generator

        return self._once(
            "_generator",
            lambda: create_generator(self.config, lambda: self.embedder, lambda: self.model_name),
        )

    @property
    def answerer(self) -> Answerer:
        """What ``ask_events`` calls: retrieval + generator, through the answer cache."""

        def build() -> Answerer:
            from .generate.rag import RagAnswerer

            plain = RagAnswerer(self.retriever, lambda: self.generator)
            cache = self.cache
            if cache is None:
                return plain
            from .cache.layer import CachedAnswerer

            return CachedAnswerer(
                plain, cache, self.retriever, self._scope, lambda: self.generator.fingerprint
            )

        return self._once("_answerer", build)

    def _scope(self) -> str:
        """The part of a cache key that changes whenever the index or a setting does.

        On the hot path (every cached search): one SQLite read, of the generation; the
        index id and the settings fingerprint are fixed for the life of the store."""
        store = self.store
        if self._settings_fingerprint is None:
            from .cache.query_cache import scope_template

            reranker = self.reranker
            models = f"{self.embedder.fingerprint}|{reranker.fingerprint if reranker else ''}"
            index_id = store.get_meta("index_id") or ""
            self._settings_fingerprint = scope_template(self.config, index_id, models)
        return self._settings_fingerprint.format(store.generation)

    # ------------------------------------------------------------------ ingest
    def ingest(
        self,
        paths: Iterable[str | Path],
        prune: bool = False,
        progress: Progress | None = None,
        exclude: Sequence[str] = (),
        runner: ProcessRunner | str = "local",
    ) -> IngestReport:
        """Index files and directories; unchanged sources are skipped.

        With ``prune``, indexed sources under ``paths`` that no longer exist are removed;
        ``exclude`` globs skip matching files (matched against the path under each given
        directory, the absolute path and folder names). ``progress(event, data)`` gets
        ``discovered`` (files found), ``start`` (the path about to be read), ``chunks``
        (just embedded) and ``source`` (its result). ``runner``: where sources are processed
        (see :func:`snaprag.ingest.runners.opened`); the index is the same whichever.

        The files are discovered before anything is written (no index directory appears
        when there is nothing to read), and nothing is written before the ingest lock is
        held, so a refused ingest changes nothing.
        """
        from .index.factory import memory_mapped
        from .ingest.job import IngestJob, nothing_to_read
        from .ingest.model_choice import model_for_new_index
        from .ingest.plan import discover
        from .ingest.runners import opened

        cfg = self.config
        found = discover([Path(p) for p in paths], skip=[cfg.index_dir], exclude=exclude)
        if not found.candidates and not (prune and self._index_exists()):
            return nothing_to_read(found, progress)
        cfg.index_dir.mkdir(parents=True, exist_ok=True)
        with layout.ingest_lock(self.config.index_dir), opened(runner) as runs:
            store = self._open_store(create=True)
            self._check_settings(store)  # again, now that no other ingest can change it
            # no model named: a new index gets the one its files' text asks for
            choice = None if self._wanted_model() else model_for_new_index(store, found, cfg)
            if choice is not None:
                self._use_model(choice.model)
            job = IngestJob.for_index(store, self.embedder, self.model_name, cfg, progress, runs)
            job.report.notes += [choice.note] if choice is not None and choice.note else []
            report = job.run_discovered(found, prune=prune)
        if memory_mapped(cfg.dense_backend):  # searchers then map its files, not rebuild it
            self.retriever.snapshot()
        return report

    def _use_model(self, model: str) -> None:
        """Build the parts with ``model``, the one picked for a new index from its text."""
        with self._lock:
            model = with_second_model(model, self.config.second_model)
            if model != self.model_name:  # parts built for another model go
                self._drop_search_parts()
                self._close_embedder()
                self._embedder, self._settings_fingerprint = _UNSET, None
            self._auto_model = model

    # ------------------------------------------------------------------ search
    def search(
        self, query: str, k: int = 10, filters: Filters | None = None, mode: str = "hybrid"
    ) -> SearchHits:
        """The ``k`` best chunks for ``query`` (several may come from one document), as a
        list of :class:`Hit` whose ``timings`` attribute holds the stage timings."""
        batch = self.search_many([query], k, filters, mode)
        return SearchHits(batch[0], batch.timings)

    def search_many(
        self,
        queries: Sequence[str],
        k: int = 10,
        filters: Filters | None = None,
        mode: str = "hybrid",
    ) -> SearchBatch:
        """Search many queries in one batched call; one hit list per query, in order
        (``timings`` attribute: the batch's stage timings).

        Results come from the query cache when an identical (normalized) query was
        answered on the same index version with the same settings.
        """
        queries = list(queries)
        try:
            limit = self.config.max_query_chars
            result = search_checked(self.searcher, queries, k, filters, mode, limit)
        except Exception as exc:
            self.telemetry.error("search", exc)
            raise
        self.telemetry.stage_timings("search", result.timings, len(queries))
        return result

    # ------------------------------------------------------------------ answers
    def ask_events(
        self, question: str, k: int = 5, filters: Filters | None = None
    ) -> Iterator[AnswerEvent]:
        """Answer ``question`` from the top ``k`` chunks, as a stream of events.

        ``hits`` (retrieval done), ``token`` (pieces of text as they are generated), then
        ``done`` with the final :class:`Answer` (citations, timings, metrics), or ``error``
        with the error that stopped it; errors are events here, never raised.
        """
        try:
            if not check_batch([question], self.config.max_query_chars):
                from .generate.rag import no_terms_events

                self.require_index()  # no index is still an error, not an empty answer
                yield from no_terms_events(question, self.config.llm)
                return
            events = self.answerer.ask_events(question, k, filters)
        except SnapragError as exc:
            self.telemetry.error("ask", exc)
            yield AnswerEvent("error", error=exc)
            return
        for event in events:
            if event.kind == "done" and event.answer is not None:
                self.telemetry.stage_timings("ask", event.answer.timings)
                if event.answer.metrics:
                    self.telemetry.generator_metrics(event.answer.generator, event.answer.metrics)
            elif event.kind == "error" and event.error is not None:
                self.telemetry.error("ask", event.error)
            yield event

    def ask(self, question: str, k: int = 5, filters: Filters | None = None) -> Answer:
        """An answer with citations built from the top ``k`` chunks (extractive by default,
        or written by the LLM of ``config.llm``); raises the error of an ``error`` event."""
        for event in self.ask_events(question, k, filters):
            if event.kind == "error" and event.error is not None:
                raise event.error
            if event.kind == "done" and event.answer is not None:
                return event.answer
        raise GenerationError("the answer ended without a result", "generation_failed")

    def warm_up(self) -> None:
        """Load the model and the search indexes now, so the first query is fast.

        With ``cache_warm_top`` > 0, also precompute the most frequent logged queries.
        With an LLM configured (``llm``), its model is loaded and warmed too.
        """
        self.retriever.warm_up()
        self.generator.load()
        if self.config.cache_warm_top and self.cache is not None:
            self.warm_cache(self.config.cache_warm_top)

    def close(self) -> None:
        """Release models, connections and the cache (flushing its counters).

        Meant for shutdown, once no other thread uses the engine; a call still running
        finishes, and an engine used again after ``close`` reopens what it needs."""
        with self._lock:
            if self._cache not in (None, _UNSET):  # None: off, and it stays off
                cache, self._cache = self._cache, _UNSET  # rebuilt if used again
                cache.close()
            if self._generator is not _UNSET:
                self._generator.close()  # a local model nobody uses any more can be unloaded
            self._drop_search_parts()
            self._close_embedder()
            if self._store is not _UNSET:
                self._store.close()

    def _close_embedder(self) -> None:
        close = getattr(self._embedder, "close", None)  # stops an ONNX embedder's workers
        if close is not None and not self._injected_embedder:
            close()

    def _drop_search_parts(self) -> None:
        if self._retriever is not _UNSET:
            self._retriever.close()
        self._retriever = self._searcher = self._answerer = _UNSET

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
