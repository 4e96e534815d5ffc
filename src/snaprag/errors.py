"""Errors raised by snaprag.

Every error the engine raises on purpose derives from :class:`SnapragError`, so callers
can catch one class. Messages say what was wrong and what to do next::

    SnapragError
    ├── ConfigError          a setting has a bad value (names the allowed ones)
    ├── LoaderError          one source could not be read (corrupt, encrypted, too big...)
    │   └── UnsupportedFormatError
    ├── ModelError           an embedding model could not be found, fetched or converted
    ├── IndexStateError      the index is missing, locked by an ingest, read-only or from
    │   │                    another version
    │   └── IndexBusyError   another writer (ingest, delete) holds the index right now
    ├── QueryError           a query or query file is malformed
    └── GenerationError      an LLM could not be loaded or reached, or failed mid-answer
                             (``code`` says which: model_missing, connection_refused, ...)
"""

from __future__ import annotations


class SnapragError(Exception):
    """Base class of every error snaprag raises on purpose."""


class ConfigError(SnapragError, ValueError):
    """A configuration value is invalid."""


class LoaderError(SnapragError):
    """A source document could not be loaded; the message is a one-line reason."""


class UnsupportedFormatError(LoaderError):
    """No loader handles this file type."""


class ModelError(SnapragError):
    """An embedding model could not be located, fetched or converted."""


class IndexStateError(SnapragError):
    """The index directory cannot be used as asked (missing, locked, read-only, or of
    another schema version)."""


class IndexBusyError(IndexStateError):
    """Another writer (an ingest or a delete, in this or another process) holds the index;
    trying again once it is done succeeds."""


class QueryError(SnapragError, ValueError):
    """A query (or a file of queries) is malformed."""


class GenerationError(SnapragError):
    """An answer could not be generated: the model, the server or the prompt is at fault.

    ``code`` is a stable, machine-readable reason (see :data:`GENERATION_ERROR_CODES`); the
    message says what happened and what to do next.
    """

    def __init__(self, message: str, code: str = "generation_failed") -> None:
        super().__init__(message)
        self.code = code


#: the ``code`` values of :class:`GenerationError`
GENERATION_ERROR_CODES = (
    "backend_missing",  # the optional package for a backend is not installed
    "model_missing",  # the model file does not exist
    "model_unreadable",  # the file exists but cannot be read or is not a GGUF model
    "model_load_failed",  # llama.cpp refused the model (format, memory)
    "connection_refused",  # nothing listens at the server URL
    "connection_failed",  # the server cannot be reached (name lookup, TLS, network)
    "timeout",  # the server did not answer (or stalled mid-stream) within the timeout
    "stream_dropped",  # the connection closed before the answer was finished
    "server_error",  # the server answered with an error status or an error event
    "context_overflow",  # the prompt does not fit the model's context
    "bad_response",  # the server's answer could not be understood
    "internal",  # an unexpected error inside snaprag or a library (a bug: please report)
    "generation_failed",  # anything else
)
