"""The ``snaprag`` command line: a thin shell over the public :class:`snaprag.Engine` API.

Exit codes: 0 success; 1 some sources failed to ingest; 2 bad usage or an error that
stopped the command (the message says what to do next); 130 interrupted (Ctrl-C).

Layout: ``app`` (the application, usage errors), ``options`` (options shared by commands
and their mapping to settings), ``shell`` (opening the engine, errors, JSON), one module per
group of commands (``ingest``, ``query``, ``admin``, ``bench``), and terminal output
(``render``, ``stream``, ``progress``).
"""

from .app import app, main

__all__ = ["app", "main"]
