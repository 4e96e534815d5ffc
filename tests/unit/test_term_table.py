"""The low-memory BM25 vocabulary: the same term -> id mapping as a dict, exactly, for
every term and for terms it does not hold (CRC-32 collisions included)."""

from __future__ import annotations

import zlib

import numpy as np
import pytest

from snaprag.index.vocab import BLOB, TABLE, TermTable, write_term_table

TERMS = ["cell", "protein", "한국어", "naïve", "", "x" * 300, "vitamin", "d", "🙂", "cells"]


def table_of(tmp_path, terms) -> TermTable:
    write_term_table(tmp_path, terms)
    return TermTable.load(tmp_path)


def test_same_mapping_as_a_dict(tmp_path):
    table = table_of(tmp_path, TERMS)
    assert len(table) == len(TERMS)
    for tid, term in enumerate(TERMS):
        assert table.get(term) == tid and table[term] == tid and term in table
    for missing in ("Cell", "protei", "proteins", "한국", " ", "x" * 299):
        assert table.get(missing) is None and missing not in table
        with pytest.raises(KeyError):
            table[missing]
    assert table.get("nope", -1) == -1
    assert list(table) == TERMS  # in id order
    assert dict(table.items()) == {t: i for i, t in enumerate(TERMS)}


def test_terms_sharing_a_crc_are_all_compared(tmp_path):
    # "plumless" and "buckeroo" have the same CRC-32 (a known pair)
    assert zlib.crc32(b"plumless") == zlib.crc32(b"buckeroo")
    table = table_of(tmp_path, ["a", "plumless", "b", "buckeroo"])
    assert table.get("plumless") == 1 and table.get("buckeroo") == 3


def test_many_random_terms(tmp_path):
    rng = np.random.default_rng(5)
    letters = np.array(list("abcdefghij"))
    terms = sorted({"".join(rng.choice(letters, rng.integers(1, 8))) for _ in range(3000)})
    table = table_of(tmp_path, terms)
    assert all(table.get(t) == i for i, t in enumerate(terms))
    assert table.get("k") is None
    assert table.nbytes < 20 * len(terms) + sum(len(t) for t in terms)


def test_empty_vocabulary(tmp_path):
    table = table_of(tmp_path, [])
    assert len(table) == 0 and table.get("a") is None and list(table) == []


def test_a_table_that_does_not_match_its_bytes_is_refused(tmp_path):
    write_term_table(tmp_path, TERMS)
    (tmp_path / BLOB).write_bytes((tmp_path / BLOB).read_bytes()[:-3])
    with pytest.raises(ValueError, match="ends at"):
        TermTable.load(tmp_path)
    np.save(tmp_path / TABLE, np.zeros(3, np.int64))
    with pytest.raises(ValueError, match="dtype"):
        TermTable.load(tmp_path)
