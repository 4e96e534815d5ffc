"""The engine: one object that ingests, searches and answers over one index directory.

The CLI (and, later, the HTTP server) are thin shells over it::

    from snaprag import Engine

    engine = Engine.open("./.snaprag")
    engine.ingest(["docs/"])
    for hit in engine.search("how long is the warranty?", k=5):
        print(hit.score, hit.source, hit.page)
    print(engine.ask("How long is the warranty?").text)
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .config import Config
from .embed.models import MODEL_FORMAT, PRESETS, canonical_name
from .embed.onnx_embedder import OnnxEmbedder
from .errors import ConfigError, GenerationError, IndexError_, SnapragError
from .index.store import Store
from .index.tokenize import TOKENIZER_VERSION
from .ingest.chunking import Chunker
from .search.retriever import Filters, Retriever
from .types import Answer, AnswerEvent, Hit

if TYPE_CHECKING:
    from .cache.query_cache import QueryCache

if TYPE_CHECKING:
    from .ingest.job import IngestReport, Progress

log = logging.getLogger(__name__)

DB_NAME = "snaprag.db"
DEFAULT_MODEL = "minilm"


class Engine:
    """Ingest, search and answer over one index directory (created on first ingest)."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self._store: Store | None = None
        self._embedder: OnnxEmbedder | None = None
        self._retriever: Retriever | None = None
        self._generator: Any = None  # see the generator property
        self._cache: QueryCache | None = None
        self._lazy_lock = threading.RLock()
        self._cache_scope: tuple[str, str] | None = None  # (index_id, settings fingerprint)

    @classmethod
    def open(cls, path: str | Path | None = None, **settings: Any) -> Engine:
        """Open (lazily) the index at ``path`` (default ``$SNAPRAG_INDEX`` or ``./.snaprag``).

        ``settings`` override :class:`~snaprag.config.Config` fields, e.g. ``model="e5-small"``.
        """
        return cls(Config.from_env(index_dir=path, **settings))

    # ------------------------------------------------------------------ parts
    @property
    def db_path(self) -> Path:
        return self.config.index_dir / DB_NAME

    def _open_store(self, create: bool) -> Store:
        if self._store is None:
            if not self.db_path.exists():
                if not create:
                    raise IndexError_(
                        f"no index at {self.config.index_dir}: run 'snaprag ingest PATH' first "
                        "(or pass --index DIR / set SNAPRAG_INDEX)"
                    )
                self.config.index_dir.mkdir(parents=True, exist_ok=True)
            store = Store(self.db_path)
            try:
                self._check_settings(store)
            except ConfigError:
                store.close()
                raise
            self._upgrade_terms(store)
            self._store = store
        return self._store

    @staticmethod
    def _upgrade_terms(store: Store) -> None:
        """An index from an older tokenizer gets its BM25 terms rebuilt (once, vectors kept)."""
        import sqlite3

        from .index.retokenize import refresh_bm25_terms

        try:
            refresh_bm25_terms(store)
        except sqlite3.OperationalError as exc:  # read-only or busy: search with the old terms
            log.warning("could not update the BM25 terms of %s: %s", store.path, exc)

    def _check_settings(self, store: Store) -> None:
        """A non-empty index keeps the model and vector format it was built with."""
        built_with = store.get_meta("model")
        wanted = canonical_name(self.config.model) if self.config.model else None
        if built_with is None:
            return
        if wanted is not None and wanted != built_with and store.counts()["chunks"]:
            raise ConfigError(
                f"index {self.config.index_dir} was built with model {built_with!r}, not "
                f"{wanted!r}; search it with --model {built_with} or ingest into a new --index"
            )

    @property
    def model_name(self) -> str:
        stored = self._store.get_meta("model") if self._store is not None else None
        if self.config.model:
            return canonical_name(self.config.model)
        return stored or DEFAULT_MODEL

    @property
    def embedder(self) -> OnnxEmbedder:
        if self._embedder is None:
            cfg = self.config
            self._embedder = OnnxEmbedder(
                self.model_name,
                cfg.cache_dir,
                cfg.quantization,
                cfg.effective_threads,
                cfg.embed_batch_size,
            )
        return self._embedder

    @property
    def retriever(self) -> Retriever:
        if self._retriever is None:
            store = self._open_store(create=False)
            dim = int(store.get_meta("dim") or self.embedder.dim)
            dtype = store.get_meta("vector_dtype") or self.config.vector_dtype
            embedder: Any = self.embedder
            cache = self.cache
            if cache is not None:
                from .cache.embedder import CachedQueryEmbedder
                from .cache.query_cache import code_fingerprint

                fingerprint = f"{self._model_fingerprint()}|{code_fingerprint()}"
                embedder = CachedQueryEmbedder(embedder, cache, fingerprint)
            self._retriever = Retriever(store, embedder, self.config, dim, dtype)
            self._retriever.reranker = self._second_stage()
        return self._retriever

    @property
    def cache(self) -> QueryCache | None:
        """The query cache (None when ``cache`` is off or there is no index yet)."""
        if self._cache is None and self.config.cache and self.db_path.exists():
            from .cache.query_cache import QueryCache

            with self._lazy_lock:
                if self._cache is None:
                    index_id = self._open_store(create=False).get_meta("index_id") or ""
                    self._cache = QueryCache(self.config, index_id=index_id)
        return self._cache

    def _model_fingerprint(self) -> str:
        """The embedding model's identity: name, format, quantization (and files, if local)."""
        name = self.model_name
        parts = [name, str(MODEL_FORMAT), self.config.quantization, *_files_identity(name)]
        return "|".join(parts)

    def _scope(self) -> str:
        """The part of a result key that changes whenever the index or a setting does."""
        if self._cache_scope is None:
            from .cache.query_cache import settings_fingerprint

            store = self._open_store(create=False)
            second = [
                *_files_identity(self.config.rerank_model or ""),
                *_files_identity(self.config.rescore_model or ""),
            ]  # local second-stage model directories: their files, not only their path
            self._cache_scope = (
                store.get_meta("index_id") or "",
                settings_fingerprint(self.config, "|".join([self._model_fingerprint(), *second])),
            )
        index_id, settings = self._cache_scope
        return f"{index_id}:{self._open_store(create=False).generation}:{settings}"

    def _second_stage(self) -> Any:
        """The optional reranker: a cross-encoder, or a second bi-encoder rescoring."""
        cfg = self.config
        if cfg.rerank_model:
            from .search.rerank import OnnxCrossEncoder

            return OnnxCrossEncoder(
                cfg.rerank_model, cfg.cache_dir, cfg.quantization, cfg.effective_threads
            )
        if cfg.rescore_model:
            from .search.rescore import BiEncoderRescorer

            second = OnnxEmbedder(
                canonical_name(cfg.rescore_model),
                cfg.cache_dir,
                cfg.quantization,
                cfg.effective_threads,
                cfg.embed_batch_size,
            )
            return BiEncoderRescorer(second, cfg.rescore_alpha)
        return None

    # ------------------------------------------------------------------ operations
    def ingest(
        self,
        paths: Iterable[str | Path],
        prune: bool = False,
        progress: Progress | None = None,
    ) -> IngestReport:
        """Index files and directories; unchanged sources are skipped.

        With ``prune``, indexed sources under ``paths`` that no longer exist are removed.
        """
        from .ingest.job import IngestJob  # loaders import PDF/DOCX parsers: only when ingesting

        store = self._open_store(create=True)
        emb = self.embedder
        cfg = self.config
        dtype = store.get_meta("vector_dtype") or cfg.vector_dtype
        if store.get_meta("model") is None or not store.counts()["chunks"]:
            store.set_meta(
                {
                    "model": self.model_name,
                    "dim": emb.dim,
                    "vector_dtype": dtype,
                    "chunk_tokens": cfg.chunk_tokens,
                    "chunk_overlap": cfg.chunk_overlap,
                    "tokenizer_version": TOKENIZER_VERSION,
                    "quantization": cfg.quantization,
                }
            )
        chunker = Chunker(
            emb.count_tokens,
            emb.token_offsets,
            min(cfg.chunk_tokens, emb.max_tokens - 16),
            cfg.chunk_overlap,
        )
        job = IngestJob(store, emb, chunker, dtype, cfg.max_file_bytes, progress)
        with self._ingest_lock():
            return job.run([Path(p) for p in paths], prune=prune, skip=[cfg.index_dir])

    @contextlib.contextmanager
    def _ingest_lock(self) -> Iterator[None]:
        """One ingest per index at a time (searches are never blocked by it)."""
        path = self.config.index_dir / "ingest.lock"
        with open(path, "a+") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise IndexError_(
                    f"another 'snaprag ingest' is running on {self.config.index_dir}; "
                    "wait for it to finish (searches keep working meanwhile)"
                ) from None
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def search(
        self, query: str, k: int = 10, filters: Filters | None = None, mode: str = "hybrid"
    ) -> list[Hit]:
        """The ``k`` best chunks for ``query`` (several may come from one document)."""
        return self.search_many([query], k, filters, mode)[0]

    def search_many(
        self,
        queries: Sequence[str],
        k: int = 10,
        filters: Filters | None = None,
        mode: str = "hybrid",
    ) -> list[list[Hit]]:
        """Search many queries in one batched call; one hit list per query, in order.

        Results come from the query cache when an identical (normalized) query was
        answered on the same index version with the same settings.
        """
        queries = list(queries)
        cache = self.cache if queries else None
        if cache is None:
            return self.retriever.search_many(queries, k, filters, mode).hits
        return self._cached_search(cache, queries, k, filters, mode)

    def _cached_search(
        self,
        cache: QueryCache,
        queries: list[str],
        k: int,
        filters: Filters | None,
        mode: str,
        log: bool = True,
    ) -> list[list[Hit]]:
        from .cache.normalize import normalize_query

        retriever = self.retriever
        scope = self._scope()
        params = (k, mode, _filters_key(filters))
        norms = [normalize_query(q) for q in queries]
        keys = [cache.key("retrieval", scope, n, params) for n in norms]
        found: list[Any] = cache.tiered.get_many("retrieval", keys)
        missing = [i for i, v in enumerate(found) if v is None]
        vectors: dict[int, Any] = {}
        semantic_scope = f"{scope}{params}"
        if cache.semantic is not None and mode != "bm25" and missing:
            vectors = self._semantic_lookup(
                cache, "retrieval", semantic_scope, queries, norms, missing, found
            )
            missing = [i for i in missing if found[i] is None]
        if missing:
            fresh = retriever.search_many([queries[i] for i in missing], k, filters, mode).hits
            items = []
            for j, i in enumerate(missing):
                found[i] = tuple(fresh[j])
                items.append((keys[i], found[i]))
                if i in vectors:
                    cache.semantic.add(semantic_scope, norms[i], vectors[i], keys[i])
            cache.tiered.put_many("retrieval", items)
        if log:
            cache.log_queries("search", norms, params, queries)
        return [list(v) for v in found]

    def _semantic_lookup(
        self,
        cache: QueryCache,
        namespace: str,
        scope: str,
        queries: list[str],
        norms: list[str],
        missing: list[int],
        found: list[Any],
    ) -> dict[int, Any]:
        """Fill ``found[i]`` (for ``i`` in ``missing``) from the nearest cached query of
        ``scope`` that asks the same thing; returns the query vectors computed on the way
        (reused by the search itself, and to add the new entries)."""
        retriever = self.retriever
        # an English-only model cannot compare Korean queries: exact keys only for those
        comparable = [i for i in missing if not retriever._dense_blind_to(queries[i])]
        if not comparable:
            return {}
        qvec = retriever.embedder.embed_queries([queries[i] for i in comparable])
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
        hits = sum(1 for i in alias if found[i] is not None)
        cache.stats.record("semantic", namespace, hits, len(comparable) - hits)
        return vectors

    @property
    def generator(self) -> Any:
        """What writes answers (``config.llm``): built on first use, its model loaded lazily.

        Its ``fingerprint`` names the model, prompt version, sampling and context budget.
        """
        if self._generator is None:
            from .generate.factory import create_generator

            with self._lazy_lock:
                if self._generator is None:
                    self._generator = create_generator(
                        self.config, lambda: self.embedder, lambda: self.model_name
                    )
        return self._generator

    def ask_events(
        self, question: str, k: int = 5, filters: Filters | None = None
    ) -> Iterator[AnswerEvent]:
        """Answer ``question`` from the top ``k`` chunks, as a stream of events.

        ``hits`` (retrieval done), ``token`` (pieces of text as they are generated), then
        ``done`` with the final :class:`Answer` (citations, timings, metrics), or ``error``
        with the error that stopped it; errors are events here, never raised.
        """
        cache = self.cache
        if cache is None:
            yield from self._generate_events(question, k, filters)
            return
        yield from self._ask_events(cache, question, k, filters)

    def _ask_events(
        self,
        cache: QueryCache,
        question: str,
        k: int,
        filters: Filters | None,
        log: bool = True,
    ) -> Iterator[AnswerEvent]:
        """``ask_events`` through the answer cache (``log`` False: warming, not counted)."""
        from .cache.answers import answer_from_cache, dump_answer
        from .cache.normalize import normalize_query

        started = time.perf_counter()
        params = (k, _filters_key(filters))
        norm = normalize_query(question)
        try:
            scope = self._answer_scope(k, filters)
            key = cache.key("answer", scope, norm)
        except SnapragError as exc:
            yield AnswerEvent("error", error=exc)
            return
        if log:
            cache.log_queries("ask", [norm], params, [question])
        found: list[Any] = [cache.tiered.get("answer", key)]
        vectors: dict[int, Any] = {}
        if found[0] is None and cache.semantic is not None:
            try:
                vectors = self._semantic_lookup(
                    cache, "answer", scope, [question], [norm], [0], found
                )
            except SnapragError as exc:
                yield AnswerEvent("error", error=exc)
                return
        data = found[0]
        if data is not None:
            elapsed = (time.perf_counter() - started) * 1000
            yield from answer_from_cache(data, question, elapsed).events()
            return
        for event in self._generate_events(question, k, filters):
            if event.kind == "done" and event.answer is not None:
                cache.tiered.put("answer", key, dump_answer(event.answer))
                if 0 in vectors:
                    cache.semantic.add(scope, norm, vectors[0], key)
            yield event

    def _answer_scope(self, k: int, filters: Filters | None) -> str:
        """Index version and settings, the generator's fingerprint, k and filters."""
        params = (k, _filters_key(filters))
        return f"{self._scope()}|answer|{self.generator.fingerprint}|{params}"

    def _answer_key(self, cache: QueryCache, question: str, k: int, filters: Filters | None) -> str:
        """The answer scope and the normalized question."""
        from .cache.normalize import normalize_query

        return cache.key("answer", self._answer_scope(k, filters), normalize_query(question))

    def _generate_events(
        self, question: str, k: int, filters: Filters | None
    ) -> Iterator[AnswerEvent]:
        from .generate.rag import answer_events

        started = time.perf_counter()
        try:
            result = self.retriever.search_many([question], k, filters)
            generator = self.generator
        except SnapragError as exc:
            yield AnswerEvent("error", error=exc)
            return
        retrieve_ms = (time.perf_counter() - started) * 1000
        yield from answer_events(
            generator, question, result.hits[0], result.timings, started, retrieve_ms
        )

    def ask(self, question: str, k: int = 5, filters: Filters | None = None) -> Answer:
        """An answer with citations built from the top ``k`` chunks (extractive by default,
        or written by the LLM of ``config.llm``); raises the error of an ``error`` event."""
        for event in self.ask_events(question, k, filters):
            if event.kind == "error" and event.error is not None:
                raise event.error
            if event.kind == "done" and event.answer is not None:
                return event.answer
        raise GenerationError("the answer ended without a result", "generation_failed")

    def stats(self) -> dict[str, Any]:
        store = self._open_store(create=False)
        counts = store.counts()
        size = 0
        for f in self.config.index_dir.rglob("*"):
            with contextlib.suppress(OSError):  # a snapshot being replaced meanwhile
                size += f.stat().st_size if f.is_file() else 0
        model = store.get_meta("model") or self.model_name
        return {
            "index": str(self.config.index_dir.resolve()),
            "version": store.version,
            "sources": counts["sources"],
            "documents": counts["documents"],
            "chunks": counts["chunks"],
            "partial_sources": counts["partial_sources"],
            "bytes": size,
            "model": model,
            "model_description": PRESETS[model].description if model in PRESETS else model,
            "dim": int(store.get_meta("dim") or 0),
            "vector_dtype": store.get_meta("vector_dtype"),
            "quantization": store.get_meta("quantization"),
            "chunk_tokens": int(store.get_meta("chunk_tokens") or 0),
        }

    def warm_up(self) -> None:
        """Load the model and the search indexes now, so the first query is fast.

        With ``cache_warm_top`` > 0, also precompute the most frequent logged queries.
        With an LLM configured (``llm``), its model is loaded and warmed too.
        """
        self.retriever.warm_up()
        if self.config.llm != "extractive":
            self.generator.load()
        if self.config.cache_warm_top and self.cache is not None:
            self.warm_cache(self.config.cache_warm_top)

    def warm_cache(self, top: int = 100) -> list[dict[str, Any]]:
        """Run the ``top`` most frequent logged queries so that their results are cached.

        Returns the warmed queries (``kind``, ``text``, ``count``, ``params``), most frequent
        first. Warming is not counted in the query log.
        """
        cache = self.cache
        if cache is None:
            raise ConfigError("the query cache is off (cache=False / SNAPRAG_CACHE=0)")
        entries = cache.top_queries(top)
        groups: dict[tuple[Any, ...], list[str]] = {}
        for entry in entries:
            if entry["kind"] == "search":
                k, mode, fkey = entry["params"]
                groups.setdefault((k, mode, tuple(fkey) if fkey else None), []).append(
                    entry["text"]
                )
        for (k, mode, fkey), texts in groups.items():
            filters = Filters(source=fkey[0], type=fkey[1]) if fkey else None
            for start in range(0, len(texts), 64):
                self._cached_search(cache, texts[start : start + 64], k, filters, mode, log=False)
        warmed = [e for e in entries if e["kind"] == "search"]
        for entry in entries:
            if entry["kind"] != "ask":
                continue
            k, fkey = entry["params"]
            filters = Filters(source=fkey[0], type=fkey[1]) if fkey else None
            events = list(self._ask_events(cache, entry["text"], k, filters, log=False))
            if events and events[-1].kind == "done":  # a failed answer is not cached
                warmed.append(entry)
        order = {id(e): i for i, e in enumerate(entries)}
        return sorted(warmed, key=lambda e: order[id(e)])

    def close(self) -> None:
        if self._cache is not None:
            self._cache.close()
            self._cache = None
        if self._generator is not None and hasattr(self._generator, "close"):
            self._generator.close()  # a local model nobody uses any more can be unloaded
        if self._retriever is not None:
            self._retriever.close()
        if self._store is not None:
            self._store.close()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- front-end helpers (cli-config branch): begin
    # What the CLI calls that the engine does not offer yet, written over today's internals
    # and kept in this one block so that the engine's owner can re-home it: exclude patterns
    # and a "start" event (the ingest job's), source listing and deletion (the store's coming
    # source_summaries() / delete(); the SQL below is temporary), cache report and clearing.

    def ingest(  # noqa: F811 - temporary: replaces the one above until the job takes exclude
        self,
        paths: Iterable[str | Path],
        prune: bool = False,
        exclude: Sequence[str] = (),
        progress: Progress | None = None,
    ) -> IngestReport:
        """Index files and directories; unchanged sources are skipped.

        With ``prune``, indexed sources under ``paths`` that no longer exist are removed.
        ``exclude`` holds glob patterns of files not to index, matched against the file
        name, its path under a given directory, its absolute path and its folders' names.
        ``progress(event, data)`` gets ``discovered`` (number of files), ``start`` (the
        path about to be processed), ``source`` (its result) and ``chunks`` (embedded).
        Nothing is created on disk when none of ``paths`` exists.
        """
        from .ingest.job import FAILED, IngestJob, IngestReport, SourceResult, discover

        roots = [Path(p) for p in paths]
        patterns = tuple(exclude)
        notify = progress or (lambda event, data: None)
        if not self.db_path.exists() and not any(r.exists() for r in roots):
            report = IngestReport(
                [SourceResult(str(r.resolve()), FAILED, "no such file or directory") for r in roots]
            )
            notify("discovered", len(roots))
            for result in report.results:
                notify("source", result)
            return report
        excluded = self._excluded

        class Job(IngestJob):
            def run(
                job, paths: Sequence[Path], prune: bool = False, skip: Sequence[Path] = ()
            ) -> IngestReport:
                start = time.perf_counter()
                files = [
                    (path, explicit)
                    for path, explicit in discover(paths, skip)
                    if not excluded(path, paths, patterns)
                ]
                job.progress("discovered", len(files))
                seen: set[str] = set()
                for path, explicit in files:
                    job.progress("start", str(path))
                    result = job._one(path, explicit)
                    if result.status != FAILED or path.exists():
                        seen.add(str(path.resolve()))
                    job.report.results.append(result)
                    job.progress("source", result)
                if prune:
                    job._prune(paths, seen)
                job.report.seconds = time.perf_counter() - start
                return job.report

        store = self._open_store(create=True)
        emb = self.embedder
        cfg = self.config
        dtype = store.get_meta("vector_dtype") or cfg.vector_dtype
        if store.get_meta("model") is None or not store.counts()["chunks"]:
            store.set_meta(
                {
                    "model": self.model_name,
                    "dim": emb.dim,
                    "vector_dtype": dtype,
                    "chunk_tokens": cfg.chunk_tokens,
                    "chunk_overlap": cfg.chunk_overlap,
                    "tokenizer_version": TOKENIZER_VERSION,
                    "quantization": cfg.quantization,
                }
            )
        chunker = Chunker(
            emb.count_tokens,
            emb.token_offsets,
            min(cfg.chunk_tokens, emb.max_tokens - 16),
            cfg.chunk_overlap,
        )
        job = Job(store, emb, chunker, dtype, cfg.max_file_bytes, progress)
        with self._ingest_lock():
            return job.run(roots, prune=prune, skip=[cfg.index_dir])

    @staticmethod
    def _excluded(path: Path, roots: Sequence[Path], patterns: Sequence[str]) -> bool:
        import fnmatch

        if not patterns:
            return False
        names = {path.name, path.as_posix(), path.resolve().as_posix()}
        for root in roots:
            with contextlib.suppress(ValueError):
                rel = path.relative_to(root)
                names.add(rel.as_posix())
                names.update(rel.parts[:-1])
        return any(fnmatch.fnmatch(n, pattern) for n in names for pattern in patterns)

    def require_index(self) -> None:
        """Raise :class:`~snaprag.errors.IndexError_` (saying what to do) when there is no
        index yet; never creates one."""
        self._open_store(create=False)

    def documents(self) -> list[dict[str, Any]]:
        """The indexed sources, by path: ``path``, ``type``, ``documents``, ``pages``
        (None for sources without pages), ``chunks``, ``ingested_at`` (epoch seconds) and
        ``complete`` (False while a source is only partly ingested)."""
        store = self._open_store(create=False)
        rows = (
            store._conn()  # temporary: store.source_summaries() replaces this query
            .execute(
                "SELECT s.path, s.type, s.ingested_at, s.content_hash IS NOT NULL, "
                "COUNT(DISTINCT d.id), COUNT(DISTINCT c.page), COUNT(c.id) "
                "FROM sources s LEFT JOIN documents d ON d.source_id = s.id "
                "LEFT JOIN chunks c ON c.document_id = d.id GROUP BY s.id ORDER BY s.path"
            )
            .fetchall()
        )
        return [
            {
                "path": path,
                "type": type_,
                "documents": int(docs),
                "pages": int(pages) if pages else None,
                "chunks": int(chunks),
                "ingested_at": float(at),
                "complete": bool(complete),
            }
            for path, type_, at, complete, docs, pages, chunks in rows
        ]

    def delete(self, source_or_doc_id: str) -> dict[str, Any]:
        """Remove a source (its path, as listed by :meth:`documents`) or one document (its
        id) with its chunks; the index version goes up. A deleted document of a source that
        holds several comes back only when its source changes and is ingested again."""
        store = self._open_store(create=False)
        conn = store._conn()  # temporary: store.delete() replaces these queries
        wanted = source_or_doc_id
        candidates = [wanted, str(Path(wanted).expanduser().resolve())]
        for path in candidates:
            if store.source(path) is not None:
                with store.transaction(bump=True) as tx:
                    chunks = self._count_chunks(tx, "s.path = ?", path)
                    documents = store.delete_source(tx, path)
                return {
                    "deleted": "source",
                    "source": path,
                    "documents": documents,
                    "chunks": chunks,
                }
        row = conn.execute(
            "SELECT d.id, d.source_id, s.path FROM documents d "
            "JOIN sources s ON s.id = d.source_id WHERE d.doc_id = ?",
            (wanted,),
        ).fetchone()
        if row is None:
            raise IndexError_(
                f"nothing indexed as {wanted!r}: give a source path as 'snaprag docs' lists it, "
                "or a document id as search results show it (doc_id)"
            )
        with store.transaction(bump=True) as tx:
            chunks = self._count_chunks(tx, "d.id = ?", row[0])
            tx.execute("DELETE FROM documents WHERE id = ?", (row[0],))
            left = tx.execute(
                "SELECT COUNT(*) FROM documents WHERE source_id = ?", (row[1],)
            ).fetchone()[0]
            if not left:
                tx.execute("DELETE FROM sources WHERE id = ?", (row[1],))
        return {
            "deleted": "document",
            "doc_id": wanted,
            "source": row[2],
            "documents": 1,
            "chunks": chunks,
        }

    @staticmethod
    def _count_chunks(conn: Any, where: str, arg: Any) -> int:
        return int(
            conn.execute(
                "SELECT COUNT(*) FROM chunks c JOIN documents d ON d.id = c.document_id "
                f"JOIN sources s ON s.id = d.source_id WHERE {where}",
                (arg,),
            ).fetchone()[0]
        )

    def _require_cache(self) -> QueryCache:
        self.require_index()
        cache = self.cache
        if cache is None:
            raise ConfigError("the query cache is off (cache=False / SNAPRAG_CACHE=0)")
        return cache

    def cache_report(self) -> dict[str, Any]:
        """Hits and misses per tier and namespace (all processes so far), entries, bytes."""
        return self._require_cache().report()

    def cache_clear(self) -> dict[str, int | None]:
        """Drop every cached entry; per tier, the entries removed (None: unreachable)."""
        return self._require_cache().clear()

    # ---- front-end helpers (cli-config branch): end


def _filters_key(filters: Filters | None) -> tuple[str | None, str | None] | None:
    return None if not filters else (filters.source, filters.type)


def _files_identity(spec: str) -> list[str]:
    """Name, size and mtime of the files of a local model directory (nothing for presets)."""
    path = Path(spec)
    if not spec or spec in PRESETS or not path.is_dir():
        return []
    out = []
    for f in sorted(path.glob("*")):
        with contextlib.suppress(OSError):
            st = f.stat()
            out.append(f"{f.name}:{st.st_size}:{st.st_mtime_ns}")
    return out
