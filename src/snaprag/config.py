"""Typed engine settings.

Values come, in rising priority, from the defaults below, a profile's (:mod:`.profiles`),
a TOML config file (``config_file=`` or ``$SNAPRAG_CONFIG``), ``SNAPRAG_<FIELD>`` variables,
and keyword arguments (the CLI's options). Every value is validated when the config is built,
and a bad one raises :class:`~snaprag.errors.ConfigError` naming the allowed values.

The config stays one flat frozen dataclass (code reads ``config.fusion``); each field
belongs to one section (:data:`FIELD_SECTIONS`), which is the table it is written under in
the file::

    [search]
    fusion = "rrf"

    [cache]
    redis_url = "redis://127.0.0.1:6379/0"

:meth:`Config.sources` tells where every effective value came from.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from .config_checks import check_llm, check_otel, choice, positive
from .config_sources import (  # noqa: F401 - LANES, parse_lanes: used from here too
    FIELD_SECTIONS,
    LANES,
    SECTIONS,
    parse_env_value,
    parse_lanes,
    read_config_file,
    warn_unknown_variables,
)
from .errors import ConfigError
from .index.milvus.names import check_store
from .profiles import apply_profile, profile_settings

FUSIONS = ("rrf", "weighted")
DENSE_BACKENDS = ("auto", "exact", "hnsw", "int8", "binary", "usearch")
QUANTIZATIONS = ("int8", "fp32")
VECTOR_DTYPES = ("float16", "int8")
#: document stores by name (``milvus:URI`` sets ``milvus_uri`` too; docs/milvus.md)
STORES = ("sqlite", "milvus")


def default_cache_dir() -> Path:
    """Where converted models are kept (shared by all indexes of a user)."""
    env = os.environ.get("SNAPRAG_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "snaprag"


@dataclass(frozen=True)
class Config:
    """All settings of an engine. Build with :meth:`from_env` or directly."""

    index_dir: Path = Path(".snaprag")
    #: Embedding model: a preset name (``minilm``, ``e5-small``), ``hf:ORG/NAME`` or a
    #: local model directory. ``None`` means: the model the index was built with, or
    #: ``minilm`` for a new index.
    model: str | None = None
    quantization: str = "int8"
    vector_dtype: str = "float16"
    # best hybrid nDCG@10 on SciFact train: 128 -> .719, 192 -> .723, 256 -> .718
    chunk_tokens: int = 192
    chunk_overlap: int = 32
    max_file_bytes: int = 200 * 1024 * 1024
    embed_batch_size: int = 32
    dense_backend: str = "auto"
    hnsw_min_chunks: int = 200_000
    # weighted min-max fusion, dense 0.4 / BM25 0.6: best of an RRF and weighted grid on
    # SciFact train (.732 vs RRF k=60 .722); see docs/benchmarks.md for every collection
    fusion: str = "weighted"
    rrf_k: int = 60
    dense_weight: float = 0.4
    bm25_weight: float = 0.6
    # the same for queries containing Hangul (with a multilingual model): dense 0.5 / BM25
    # 0.5, tuned on half of KorQuAD 1.0 dev (docs/benchmarks.md, "Korean tuning")
    hangul_dense_weight: float = 0.5
    hangul_bm25_weight: float = 0.5
    #: cross-encoder for a second stage (local directory or hf:ORG/NAME); None = off
    rerank_model: str | None = None
    rerank_top_n: int = 30
    #: or a second bi-encoder (a preset such as "e5-small") rescoring the top rerank_top_n;
    #: rescore_alpha is the first stage's share of the blended score
    rescore_model: str | None = None
    rescore_alpha: float = 0.3
    #: the quality profile: a second embedding model whose passage vectors are stored at
    #: ingest next to the first's, for a three-way fusion (BM25 + two dense lists); a
    #: preset, or "auto" (the multilingual preset beside an English-only one, else none)
    second_model: str | None = None
    #: the second dense list's weight in that fusion, beside dense_weight / bm25_weight
    #: (0.4 / 0.6 / 0.6: SciFact train .7433, next to the grid's best 0.3 / 0.6 / 0.6 at
    #: .7437 but without moving dense_weight for one-model indexes; docs/benchmarks.md)
    second_dense_weight: float = 0.6
    candidates: int = 100
    threads: int = 0  # 0: size from the CPUs this process may use
    cache_dir: Path = Path()
    # ---- answers (see generate/): which generator writes them, and how
    #: ``extractive`` (no LLM), ``smollm2`` (the bundled demo GGUF), ``gguf:PATH`` or
    #: ``openai:BASE_URL`` (any OpenAI-compatible server, e.g. http://127.0.0.1:8080/v1)
    llm: str = "extractive"
    #: model name sent to an OpenAI-compatible server (None: the first of its /models)
    llm_model: str | None = None
    #: API key for the server; None falls back to $OPENAI_API_KEY when the request is made
    llm_api_key: str | None = field(default=None, repr=False)
    llm_threads: int = 0  # local model: 0 = all CPUs but one (all of them on <= 2 CPUs)
    llm_ctx: int = 4096  # local model: context window in tokens (prompt + answer)
    llm_gpu_layers: int = 0  # local model: layers offloaded to a GPU (-1: all)
    llm_parallel: int = 1  # local model: concurrent sequences (slots); more wait in a queue
    llm_max_tokens: int = 256
    llm_temperature: float = 0.0  # 0: greedy, the same question gets the same answer
    llm_timeout: float = 60.0  # seconds: connect, and the longest silence while streaming
    llm_retries: int = 2  # retries of a failed request before the first token
    #: tokens of retrieved text in the prompt (the generator's own tokenizer counts them)
    context_tokens: int = 1024
    # ---- query cache: L1 memory -> L2 Redis (when redis_url is set) -> L3 <index>/cache.db
    #: answers, retrieval results and query embeddings are cached; keys carry the index
    #: version and a fingerprint of every setting that changes results, so they never go stale
    cache: bool = True
    cache_memory_mb: float = 64.0
    cache_disk: bool = True
    cache_disk_mb: float = 512.0
    #: e.g. redis://localhost:6379/0 (env SNAPRAG_REDIS_URL); None = no L2
    redis_url: str | None = None
    #: seconds before a Redis call counts as failed; after redis_failures failures in a row
    #: Redis is skipped for redis_cooldown seconds, then tried again
    redis_timeout: float = 0.1
    redis_failures: int = 3
    redis_cooldown: float = 5.0
    cache_ttl_embedding: float = 7 * 86400.0
    cache_ttl_retrieval: float = 86400.0
    cache_ttl_answer: float = 86400.0
    #: opt-in: reuse the entry of the nearest cached query above semantic_threshold (cosine),
    #: only when content words, numbers and negations agree
    semantic_cache: bool = False
    semantic_threshold: float = 0.85
    #: warm_up() precomputes the N most frequent logged queries (0 = off)
    cache_warm_top: int = 0
    # ---- added later; kept last so that positional construction stays as it was
    #: the document store backend, by name (see STORES)
    store: str = "sqlite"
    #: longer queries are refused with a QueryError (a pasted document is not a query)
    max_query_chars: int = 8192
    # ---- the HTTP server (snaprag serve): per-route admission control
    #: requests of one route worked on at once (0: the CPUs this process may use); with
    #: micro-batching, search admits 8 per one of these, which share the batches
    server_concurrency: int = 0
    #: requests of one route waiting beyond those; more get 429 with Retry-After (0: as
    #: many as the route works on at once, so an admitted request waits at most about one
    #: service time: under overload, latency stays bounded and the excess is refused early)
    server_queue: int = 0
    #: seconds a request may take, queueing included; past it: 504
    server_timeout: float = 30.0
    #: largest request body accepted, in bytes (uploads: server_max_upload)
    server_max_body: int = 1_048_576
    #: largest upload (POST /v1/documents), in bytes, all files together
    server_max_upload: int = 200 * 1024 * 1024
    #: per-route limits over the two above, "ROUTE=CONCURRENCY:QUEUE,...", routes search,
    #: ask, chat, embed and ingest (ingest: uploads waiting for the one writer), e.g.
    #: "ask=1:4,ingest=1:8"
    server_lanes: str = ""
    #: most single searches gathered into one micro-batch (1: no micro-batching)
    server_batch_max: int = 32
    #: milliseconds a micro-batch may wait for more requests, only while others run (0:
    #: none; batches still form from the requests that arrive while the workers are busy)
    server_batch_wait_ms: float = 0.0
    #: new work gets 503 while the process's CPU use is above this percent of the CPUs
    #: it may use (0: no limit)
    server_max_cpu: float = 0.0
    #: new work gets 503 while the process's resident memory is above this many MiB
    #: (0: no limit)
    server_max_memory_mb: float = 0.0
    #: under sustained overload (a standing queue), a search, ask, chat or embed request
    #: is refused at arrival (429) when the time it would spend in its lane, waiting and
    #: working (the work ahead of it over the lane's measured throughput), exceeds this
    #: multiple of the lane's unloaded latency; bursts at an idle lane are queued (0: off;
    #: only the queue length bounds a lane; see snaprag.serve.budget)
    server_latency_budget: float = 3.0
    # ---- alerts (snaprag serve): 0 or empty = off; see snaprag.observe.alerts
    #: p95 latency in ms over the last minute: "300" for every route, or "search=50,ask=3000"
    alert_p95_ms: str = ""
    #: share of requests answered 5xx over the last minute (0..1)
    alert_error_rate: float = 0.0
    alert_memory_mb: float = 0.0
    alert_cpu_percent: float = 0.0
    #: fires below this share of search look-ups answered by the cache (0..1)
    alert_cache_hit_rate: float = 0.0
    #: requests waiting in all queues together
    alert_queue_length: int = 0
    #: fires below this much free space where the indexes live
    alert_disk_free_mb: float = 0.0
    #: evaluations in a row (every alert_interval seconds) before an alert fires or clears
    alert_for: int = 3
    alert_interval: float = 5.0
    #: POST every alert change as JSON to this URL
    alert_webhook: str = ""
    # ---- traces (OpenTelemetry)
    #: OpenTelemetry traces of every search and answer are sent to this OTLP/HTTP collector
    #: (its base URL, e.g. http://127.0.0.1:4318, or the full .../v1/traces URL); needs the
    #: ``otel`` extra. Empty: no traces.
    otel_endpoint: str = ""
    #: named defaults (:mod:`.profiles`), applied by :meth:`from_env` only
    profile: str = "default"
    #: memory over a little speed: no ONNX Runtime arena; after loading a model or an
    #: index, freed memory and load-only library pages handed back; the rows a query
    #: rescores and its BM25 postings read from the snapshot's files (``os.pread``) rather
    #: than mapped, and a compact BM25 vocabulary (~0.2 ms per query; docs/benchmarks.md,
    #: "Edge profile")
    low_memory: bool = False
    #: store = "milvus": a server (``http://HOST:19530``) or a Milvus Lite file (``PATH.db``),
    #: its ``USER:PASSWORD`` or API key, and the prefix of the index's collection names
    milvus_uri: str = ""
    milvus_token: str = field(default="", repr=False)
    milvus_prefix: str = "snaprag_"

    def __post_init__(self) -> None:
        if self.cache_dir == Path():
            object.__setattr__(self, "cache_dir", default_cache_dir())
        object.__setattr__(self, "index_dir", Path(self.index_dir).expanduser())
        object.__setattr__(self, "cache_dir", Path(self.cache_dir).expanduser())
        choice("fusion", self.fusion, FUSIONS)
        choice("dense_backend", self.dense_backend, DENSE_BACKENDS)
        choice("quantization", self.quantization, QUANTIZATIONS)
        choice("vector_dtype", self.vector_dtype, VECTOR_DTYPES)
        store, uri = check_store(self.store, self.milvus_uri, self.milvus_prefix, STORES)
        object.__setattr__(self, "store", store)
        object.__setattr__(self, "milvus_uri", uri)
        profile_settings(self.profile)  # an unknown profile names the valid ones
        positive("max_query_chars", self.max_query_chars)
        positive("chunk_tokens", self.chunk_tokens, minimum=16)
        positive("embed_batch_size", self.embed_batch_size)
        positive("candidates", self.candidates)
        positive("max_file_bytes", self.max_file_bytes)
        positive("rrf_k", self.rrf_k)
        positive("rerank_top_n", self.rerank_top_n)
        positive("server_queue", self.server_queue, minimum=0)
        positive("server_max_body", self.server_max_body, minimum=1024)
        positive("server_max_upload", self.server_max_upload, minimum=1024)
        positive("server_batch_max", self.server_batch_max)
        parse_lanes(self.server_lanes)
        positive("alert_for", self.alert_for)
        for name in (
            "alert_error_rate", "alert_memory_mb", "alert_cpu_percent", "alert_cache_hit_rate",
            "alert_queue_length", "alert_disk_free_mb", "alert_interval",
        ):  # fmt: skip
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ConfigError(f"{name} must be a number >= 0, got {value}")
        for name in ("alert_error_rate", "alert_cache_hit_rate"):
            if getattr(self, name) > 1:
                raise ConfigError(f"{name} is a share between 0 and 1, got {getattr(self, name)}")
        if self.alert_webhook and not self.alert_webhook.startswith(("http://", "https://")):
            raise ConfigError(f"alert_webhook must be an http(s) URL, got {self.alert_webhook!r}")
        if self.alert_p95_ms:
            from .observe.alerts import parse_routes

            parse_routes(self.alert_p95_ms)
        for name in (
            "server_batch_wait_ms",
            "server_max_cpu",
            "server_max_memory_mb",
            "server_latency_budget",
        ):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ConfigError(f"{name} must be a number >= 0, got {value}")
        if 0 < self.server_latency_budget < 1:
            raise ConfigError(
                "server_latency_budget is a multiple of the unloaded latency: 0 (off) or at "
                f"least 1, got {self.server_latency_budget}"
            )
        if self.server_concurrency < 0:
            raise ConfigError(
                f"server_concurrency must be >= 0 (0 = CPUs), got {self.server_concurrency}"
            )
        if not (math.isfinite(self.server_timeout) and self.server_timeout > 0):
            raise ConfigError(f"server_timeout must be > 0 seconds, got {self.server_timeout}")
        check_otel(self)
        if self.rerank_model and self.rescore_model:
            raise ConfigError("set rerank_model or rescore_model, not both")
        if not 0.0 <= self.rescore_alpha <= 1.0:
            raise ConfigError(f"rescore_alpha must be in [0, 1], got {self.rescore_alpha}")
        if not 0 <= self.chunk_overlap < self.chunk_tokens // 2:
            raise ConfigError(
                f"chunk_overlap must be in [0, chunk_tokens/2), got {self.chunk_overlap} "
                f"with chunk_tokens={self.chunk_tokens}"
            )
        for name in ("cache_memory_mb", "cache_disk_mb", "redis_cooldown", "cache_warm_top"):
            if not getattr(self, name) >= 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("cache_ttl_embedding", "cache_ttl_retrieval", "cache_ttl_answer"):
            if not getattr(self, name) >= 0:
                raise ConfigError(
                    f"{name} must be >= 0 seconds (0 = do not cache), got {getattr(self, name)}"
                )
        if not self.redis_timeout > 0:
            raise ConfigError(f"redis_timeout must be > 0 seconds, got {self.redis_timeout}")
        positive("redis_failures", self.redis_failures)
        if not 0.0 < self.semantic_threshold <= 1.0:
            raise ConfigError(
                f"semantic_threshold must be in (0, 1], got {self.semantic_threshold}"
            )
        if self.threads < 0:
            raise ConfigError(f"threads must be >= 0 (0 = automatic), got {self.threads}")
        weights = ("dense_weight", "bm25_weight", "hangul_dense_weight", "hangul_bm25_weight")
        for name in (*weights, "second_dense_weight"):
            if not math.isfinite(getattr(self, name)) or getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.dense_weight == 0 and self.bm25_weight == 0:
            raise ConfigError("dense_weight and bm25_weight cannot both be 0")
        if self.hangul_dense_weight == 0 and self.hangul_bm25_weight == 0:
            raise ConfigError("hangul_dense_weight and hangul_bm25_weight cannot both be 0")
        check_llm(self)

    @classmethod
    def from_env(cls, config_file: str | Path | None = None, **overrides: Any) -> Config:
        """Defaults, then the TOML ``config_file`` (or ``$SNAPRAG_CONFIG``), then
        ``SNAPRAG_<FIELD>`` variables, then ``overrides`` (None values are ignored).

        The result remembers where each value came from: see :meth:`sources`.
        """
        names = {f.name for f in fields(cls)}
        unknown = {k for k, v in overrides.items() if v is not None} - names
        if unknown:
            raise ConfigError(f"unknown settings {sorted(unknown)}; valid: {sorted(names)}")
        warn_unknown_variables(names)
        values: dict[str, Any] = {}
        origin: dict[str, str] = {}
        path = config_file
        if path is None and os.environ.get("SNAPRAG_CONFIG"):
            path = os.environ["SNAPRAG_CONFIG"]
        if path is not None:
            for name, value in read_config_file(path).items():
                values[name] = value
                origin[name] = f"file {Path(path).expanduser()}"
        types = {f.name: str(f.type) for f in fields(cls)}
        for name in names:
            var = f"SNAPRAG_{name.upper()}"
            raw = os.environ.get(var)
            if (raw is None or raw == "") and name == "index_dir":
                var, raw = "SNAPRAG_INDEX", os.environ.get("SNAPRAG_INDEX")
            if raw is not None and raw != "":
                values[name] = parse_env_value(name, raw, types[name])
                origin[name] = f"env {var}"
        for name, value in overrides.items():
            if value is not None:
                values[name] = value
                origin[name] = "option"
        apply_profile(values, origin)  # below the file, variables and options
        try:
            config = cls(**values)
        except ConfigError as exc:  # name where the offending value was set
            culprit = next((n for n in sorted(origin) if str(exc).startswith(n + " ")), None)
            kind, _, where = origin.get(culprit or "", "").partition(" ")
            if kind == "env":
                raise ConfigError(f"{exc} (set by {where})") from None
            if kind == "file":
                section = FIELD_SECTIONS.get(culprit or "", "")
                raise ConfigError(f"{exc} (set in {where} [{section}])") from None
            raise
        if str(values.get("store", "")).startswith("milvus:") and "milvus_uri" not in origin:
            origin["milvus_uri"] = origin["store"]  # milvus:URI set both
        object.__setattr__(config, "_sources", origin)
        return config

    def sources(self) -> dict[str, str]:
        """Where each setting's value came from, for every field: ``default``,
        ``profile NAME``, ``file PATH``, ``env SNAPRAG_X`` or ``option``.

        Kept outside the dataclass fields, so it never takes part in equality, hashing,
        ``repr`` or ``dataclasses.asdict`` (cache keys are computed from the latter).
        """
        known: dict[str, str] | None = self.__dict__.get("_sources")
        out = {}
        for f in fields(self):
            if known is not None:
                out[f.name] = known.get(f.name, "default")
            else:  # built directly: a value other than the default was passed in
                out[f.name] = "default" if _is_default(self, f) else "option"
        return out

    def section(self, name: str) -> dict[str, Any]:
        """The settings of one section (``index``, ``search``, ``llm``...), by field name."""
        if name not in SECTIONS:
            raise ConfigError(f"unknown section {name!r}; sections are {', '.join(SECTIONS)}")
        return {n: getattr(self, n) for n, sec in FIELD_SECTIONS.items() if sec == name}

    def with_(self, **changes: Any) -> Config:
        """A copy with ``changes`` (validated again); they count as options in sources()."""
        config = replace(self, **changes)
        origin = dict(self.__dict__.get("_sources") or {})
        if origin or "_sources" in self.__dict__:
            origin.update(dict.fromkeys(changes, "option"))
            object.__setattr__(config, "_sources", origin)
        return config

    @property
    def effective_llm_threads(self) -> int:
        """Threads of a local LLM: all cores on a 2-core machine, else one core is left
        to retrieval and everything else.

        llama.cpp's threads wait for each other after every operation; when one of them
        loses its core to another thread or process, the whole step waits (measured on 2
        cores next to a busy process: 2 threads fell to 2-6 tokens/s on some answers,
        1 thread held 55-60). On an idle 2-core machine, though, 2 threads halve the time
        to first token (SmolLM2, 860 prompt tokens: 2.7 s vs 5.3 s; decode 74-85 vs 52
        tokens/s), so small machines use every core; set llm_threads on a shared box.
        """
        if self.llm_threads:
            return self.llm_threads
        n = self.effective_threads
        return n if n <= 2 else n - 1

    @property
    def effective_threads(self) -> int:
        if self.threads:
            return self.threads
        from .system import usable_cpus

        return usable_cpus()


def _is_default(config: Config, f: Any) -> bool:
    if f.name == "cache_dir":
        return config.cache_dir == default_cache_dir()
    return getattr(config, f.name) == f.default
