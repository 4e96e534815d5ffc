"""Stored BM25 terms of an index built by an older tokenizer are rebuilt, vectors kept."""

from __future__ import annotations

import numpy as np

from snaprag.index.base import StoredChunk
from snaprag.index.retokenize import refresh_bm25_terms
from snaprag.index.store import Store
from snaprag.index.tokenize import TOKENIZER_VERSION, tokenize, tokenize_many
from snaprag.ingest.job import indexed_text

TITLE = "임종석"
TEXTS = [
    "임종석은 1989년 2월 15일 여의도 농민 폭력 시위를 주도한 혐의로 지명수배되었다.",
    "Running studies of systems",
]


def build_old_index(path, tokenizer_version: str) -> np.ndarray:
    vectors = np.random.default_rng(0).normal(size=(len(TEXTS), 4)).astype(np.float32)
    store = Store(path)
    try:
        with store.transaction(bump=True) as conn:
            source_id = store.upsert_source(conn, "/docs/a.txt", "text", 10, 0.0)
            chunks = [
                StoredChunk(
                    seq=i,
                    text=text,
                    page=None,
                    char_start=0,
                    char_end=len(text),
                    # terms of an older analysis (here: bigrams, no "2월")
                    tokens=tokenize(indexed_text(TITLE, text), korean="bigram"),
                    vector=vectors[i],
                )
                for i, text in enumerate(TEXTS)
            ]
            store.replace_document(conn, source_id, "a", TITLE, "text", "h", 99, chunks, "float16")
        store.set_meta({"tokenizer_version": tokenizer_version})
    finally:
        store.close()
    return vectors


def stored(path):
    store = Store(path)
    try:
        a = store.read_index(4, "float16")
        version, vectors, tokens = a.version, a.vectors, a.tokens
        return version, vectors, tokens, store.get_meta("tokenizer_version")
    finally:
        store.close()


def test_stale_terms_are_rebuilt_and_vectors_kept(tmp_path):
    db = tmp_path / "snaprag.db"
    build_old_index(db, "1")
    version_before, vectors_before, tokens_before, _ = stored(db)
    assert refresh_bm25_terms(db) == len(TEXTS)
    version, vectors, tokens, tokenizer_version = stored(db)
    expected = tokenize_many([indexed_text(TITLE, t) for t in TEXTS])
    assert tokens == expected != tokens_before
    assert "2월" in tokens[0] and "2월" not in tokens_before[0]  # number + unit
    assert tokens[1][-3:] == ["run", "studi", "system"]  # after the title's terms
    assert np.array_equal(vectors, vectors_before)
    assert tokenizer_version == str(TOKENIZER_VERSION)
    assert version == version_before + 1  # snapshots of the old terms are not reused
    # current now: nothing to do, nothing changes
    assert refresh_bm25_terms(db) == 0
    assert stored(db)[0] == version


def test_current_index_is_left_alone(tmp_path):
    db = tmp_path / "snaprag.db"
    build_old_index(db, str(TOKENIZER_VERSION))
    before = stored(db)
    assert refresh_bm25_terms(db) == 0
    after = stored(db)
    assert after[0] == before[0] and after[2] == before[2]
