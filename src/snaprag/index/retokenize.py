"""Bring an index's BM25 terms up to the current tokenizer, keeping its vectors.

BM25 terms are stored per chunk, computed from the title line and chunk text
(:func:`~snaprag.index.tokenize.indexed_text`). When ``TOKENIZER_VERSION`` changes (an upgrade),
queries are tokenized the new way, so stored terms are rebuilt once from the stored
texts -- seconds, where re-embedding would take minutes. The index version moves on, so
searchers rebuild their snapshots and cached results of the old terms become unreachable.
"""

from __future__ import annotations

import logging
from pathlib import Path

from .base import DocumentStore
from .heading_terms import with_section_terms
from .store import Store
from .tokenize import TOKENIZER_VERSION, indexed_text, tokenize_many

log = logging.getLogger(__name__)


def refresh_bm25_terms(index: Store | Path) -> int:
    """Re-tokenize the chunks of an index built with another tokenizer version.

    Returns the number of chunks re-tokenized (0 when the index is current).
    """
    store = index if isinstance(index, Store) else Store(Path(index))
    try:
        stored = store.get_meta("tokenizer_version")
        if stored is not None and stored.isdigit() and int(stored) >= TOKENIZER_VERSION:
            return 0  # current, or written by a newer snaprag: never rewritten backwards
        with store.transaction(bump=True) as conn:
            found = conn.execute("SELECT value FROM meta WHERE key='tokenizer_version'").fetchone()
            if found is not None and found[0].isdigit() and int(found[0]) >= TOKENIZER_VERSION:
                return 0  # another process did it meanwhile
            rows = conn.execute(
                "SELECT c.id, d.title, c.text, c.section FROM chunks c "
                "JOIN documents d ON d.id = c.document_id ORDER BY c.id"
            ).fetchall()
            if rows:
                log.warning(
                    "rebuilding the BM25 terms of %d chunks for tokenizer version %s (once)",
                    len(rows),
                    TOKENIZER_VERSION,
                )
            for start in range(0, len(rows), 2048):
                part = rows[start : start + 2048]
                tokens = with_section_terms(
                    tokenize_many([indexed_text(t, text, s) for _, t, text, s in part]),
                    [s for *_, s in part],
                )
                conn.executemany(
                    "UPDATE chunks SET tokens = ? WHERE id = ?",
                    [(" ".join(t), r[0]) for r, t in zip(part, tokens, strict=True)],
                )
            conn.execute(
                "INSERT INTO meta VALUES ('tokenizer_version', ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (str(TOKENIZER_VERSION),),
            )
        return len(rows)
    finally:
        if store is not index:
            store.close()


def upgrade_terms(store: Store | DocumentStore) -> None:
    """Rebuild an older tokenizer's BM25 terms when the store can be written (once, vectors
    kept); a read-only or busy index is searched with its stored terms meanwhile."""
    import sqlite3

    if not isinstance(store, Store):  # Milvus: its BM25 weights are made from the terms
        found = store.get_meta("tokenizer_version")
        if found not in (None, str(TOKENIZER_VERSION)):
            log.warning(
                "the index %s has BM25 terms of tokenizer version %s, not %s: ingest it "
                "again into a new index for the current keyword search",
                store.path.parent,
                found,
                TOKENIZER_VERSION,
            )
        return
    if store.read_only:
        return  # whoever can write it upgrades it
    try:
        refresh_bm25_terms(store)
    except sqlite3.OperationalError as exc:  # busy
        log.warning("could not update the BM25 terms of %s: %s", store.path, exc)
