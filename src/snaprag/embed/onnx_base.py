"""What every ONNX model of snaprag shares: settings, lazy loading under a lock, pickling.

The embedder, the cross-encoder and the second-stage bi-encoder all follow one contract:

* the constructor only records settings (cheap, loads nothing, never fails on I/O);
* the model is resolved (found, fetched or converted once, then cached), the ONNX Runtime
  session created and the tokenizer read on first use or in :meth:`OnnxModel.warm_up`,
  each exactly once even when many threads ask at the same moment;
* ``warm_up`` is safe to call twice; scoring methods are thread-safe (ONNX Runtime
  sessions and ``tokenizers`` are);
* an instance pickles without its loaded state, so a process pool or a distributed
  worker receives the settings and loads the model on its side.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from .models import cpu_session


class OnnxModel:
    """Base of the ONNX-backed models: subclasses say how to resolve and read their files."""

    def __init__(
        self,
        spec: str,
        cache_dir: Path,
        quantization: str,
        threads: int,
        low_memory: bool = False,
    ) -> None:
        self.spec = spec
        self.cache_dir = Path(cache_dir)
        self.quantization = quantization
        self.threads = threads
        #: trade a little speed for memory (see :func:`~.models.cpu_session`)
        self.low_memory = low_memory
        self._model: Any = None
        self._session: Any = None
        self._tokenizer: Any = None
        self._lock = threading.RLock()
        #: how many times an ONNX session was created (tests count it; an embedder that
        #: both embeds passages and queries with several threads has two)
        self.session_loads = 0

    # ------------------------------------------------------------------ hooks
    def _resolve(self) -> Any:
        """The resolved model description (with ``onnx_path`` and ``tokenizer_path``)."""
        raise NotImplementedError

    def _read_tokenizer(self) -> Any:
        from tokenizers import Tokenizer

        tok = Tokenizer.from_file(str(self.model.tokenizer_path))
        tok.no_padding()
        tok.no_truncation()
        return tok

    def _on_session(self, session: Any) -> None:
        """Check or remember what a new session exposes (inputs, outputs)."""

    # ------------------------------------------------------------------ lazy state
    @property
    def model(self) -> Any:
        if self._model is None:
            with self._lock:
                if self._model is None:
                    self._model = self._resolve()
        return self._model

    @property
    def name(self) -> str:
        return str(self.model.name)

    @property
    def tokenizer(self) -> Any:  # tokenizers.Tokenizer
        if self._tokenizer is None:
            with self._lock:
                if self._tokenizer is None:
                    self._tokenizer = self._read_tokenizer()
        return self._tokenizer

    def _get_session(self) -> Any:
        if self._session is None:
            with self._lock:
                if self._session is None:
                    self._session = self._loaded(self._create_session())
        return self._session

    def _loaded(self, session: Any) -> Any:
        """A session just created (under the lock): checked, counted and, with
        ``low_memory``, with what loading left behind handed back."""
        self._on_session(session)
        self.session_loads += 1
        if self.low_memory:
            from .. import system

            # the model's protobuf copy, freed into the heap, and the library code that
            # only loading ran (searching maps back what it runs)
            system.release_free_memory()
            system.release_library_pages()
        return session

    def _create_session(self) -> Any:
        return cpu_session(self.model.onnx_path, self.threads, self.low_memory)

    @property
    def loaded(self) -> bool:
        return self._session is not None

    # ------------------------------------------------------------------ pickling
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        for name in ("_session", "_tokenizer", "_lock"):
            state.pop(name, None)
        # the resolved model names files on this machine: another node resolves its own
        # (finding its cached copy, or converting once), so paths never cross machines
        state.update(_model=None, _session=None, _tokenizer=None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.RLock()
        self.session_loads = 0
