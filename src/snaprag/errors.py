"""Errors raised by snaprag.

Every error the engine raises on purpose derives from :class:`SnapragError`, so callers
can catch one class. Messages say what was wrong and what to do next::

    SnapragError
    ├── ConfigError          a setting has a bad value (names the allowed ones)
    ├── LoaderError          one source could not be read (corrupt, encrypted, too big...)
    │   └── UnsupportedFormatError
    ├── ModelError           an embedding model could not be found, fetched or converted
    ├── IndexError_          the index directory is missing, locked or from another version
    └── QueryError           a query or query file is malformed
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


class IndexError_(SnapragError):  # trailing underscore: do not shadow the builtin
    """The index directory cannot be used as asked."""


class QueryError(SnapragError, ValueError):
    """A query (or a file of queries) is malformed."""
