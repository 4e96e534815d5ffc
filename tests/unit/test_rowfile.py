"""Positioned reads of .npy files (the low-memory setting's rescoring vectors and BM25
postings): the same values as indexing the array, whatever the rows asked for."""

from __future__ import annotations

import os

import numpy as np
import pytest

from snaprag.index import rowfile
from snaprag.index.rowfile import PositionedArray, gather_runs

pytestmark = pytest.mark.skipif(not rowfile.SUPPORTED, reason="no os.pread here")


@pytest.fixture()
def half(tmp_path) -> tuple[np.ndarray, PositionedArray]:
    array = np.random.default_rng(3).normal(size=(500, 24)).astype(np.float16)
    np.save(tmp_path / "half.npy", array)
    return array, PositionedArray(tmp_path / "half.npy")


def test_take_equals_fancy_indexing(half):
    array, rows_file = half
    assert rows_file.shape == array.shape and rows_file.dtype == array.dtype
    assert len(rows_file) == 500 and rows_file.nbytes == array.nbytes
    rng = np.random.default_rng(4)
    for size in (0, 1, 2, 50, 400):
        rows = rng.integers(-500, 500, size)  # any order, repeats, negative rows
        got = rows_file.take(rows)
        assert got.shape == (size, 24) and got.dtype == np.float16
        np.testing.assert_array_equal(got, array[rows])
    runs = np.array([7, 8, 9, 10, 200, 201, 499])  # neighbours read together, or not
    np.testing.assert_array_equal(rows_file.take(runs), array[runs])


def test_indexing_forms(half):
    array, rows_file = half
    np.testing.assert_array_equal(rows_file[np.array([3, 1])], array[[3, 1]])
    np.testing.assert_array_equal(rows_file[10:20:3], array[10:20:3])
    np.testing.assert_array_equal(rows_file[-1], array[-1])
    mask = np.zeros(500, bool)
    mask[[0, 250, 499]] = True
    np.testing.assert_array_equal(rows_file[mask], array[mask])
    np.testing.assert_array_equal(np.asarray(rows_file), array)
    np.testing.assert_array_equal(np.asarray(rows_file, dtype=np.float32), array.astype("f4"))
    with pytest.raises(IndexError):
        rows_file.take(np.array([500]))
    with pytest.raises(IndexError):
        rows_file.take(np.array([-501]))


def test_runs_of_a_one_dimensional_array(tmp_path):
    data = np.arange(1000, dtype=np.float32) * 0.5
    np.save(tmp_path / "data.npy", data)
    postings = PositionedArray(tmp_path / "data.npy")
    starts, lengths = np.array([10, 500, 0, 999, 30]), np.array([5, 0, 3, 1, 200])
    got = gather_runs(postings, starts, lengths)
    np.testing.assert_array_equal(got, gather_runs(data, starts, lengths))
    np.testing.assert_array_equal(
        got, np.concatenate([data[s : s + n] for s, n in zip(starts, lengths, strict=True)])
    )
    assert gather_runs(postings, np.zeros(0, int), np.zeros(0, int)).shape == (0,)
    with pytest.raises(IndexError):
        postings.take_runs(np.array([990]), np.array([20]))


def test_a_replaced_file_stays_readable(half, tmp_path):
    """A snapshot directory swept while a searcher still reads it: the open file lives on."""
    array, rows_file = half
    os.replace(tmp_path / "half.npy", tmp_path / "gone.npy")
    (tmp_path / "gone.npy").unlink()
    np.testing.assert_array_equal(rows_file.take(np.array([1, 2, 499])), array[[1, 2, 499]])


def test_damaged_files_are_refused(tmp_path):
    np.save(tmp_path / "a.npy", np.zeros((100, 8), np.float32))
    data = (tmp_path / "a.npy").read_bytes()
    (tmp_path / "short.npy").write_bytes(data[:-40])
    with pytest.raises(ValueError, match="truncated"):
        PositionedArray(tmp_path / "short.npy")
    (tmp_path / "junk.npy").write_bytes(b"not an array at all")
    with pytest.raises(ValueError):
        PositionedArray(tmp_path / "junk.npy")
    np.save(tmp_path / "f.npy", np.asfortranarray(np.zeros((4, 3), np.float32)))
    with pytest.raises(ValueError, match="Fortran"):
        PositionedArray(tmp_path / "f.npy")


def test_short_reads_are_completed(half, monkeypatch):
    """A read may return fewer bytes than asked (signals, network filesystems)."""
    array, rows_file = half
    real = os.preadv

    def short(fd, buffers, offset):
        (buf,) = buffers
        return real(fd, [buf[: max(1, len(buf) // 3)]], offset)

    monkeypatch.setattr(rowfile, "_preadv", short)
    np.testing.assert_array_equal(rows_file.take(np.array([0, 77, 78])), array[[0, 77, 78]])


def test_the_file_is_closed_with_the_array(tmp_path):
    np.save(tmp_path / "a.npy", np.zeros(10, np.int32))
    rows_file = PositionedArray(tmp_path / "a.npy")
    fd = rows_file._fd
    os.fstat(fd)
    rows_file.close()
    with pytest.raises(OSError):
        os.fstat(fd)


def test_a_file_of_no_rows_reads_as_an_empty_array(tmp_path):
    """Saving or growing an empty index reads its vectors whole: zero rows must work."""
    np.save(tmp_path / "empty.npy", np.zeros((0, 24), dtype=np.float16))
    rows_file = PositionedArray(tmp_path / "empty.npy")
    whole = np.asarray(rows_file)
    assert whole.shape == (0, 24) and whole.dtype == np.float16
    assert rows_file.take(np.zeros(0, dtype=np.int64)).shape == (0, 24)


def test_concurrent_readers_get_their_own_rows(half):
    """A server searches from several threads: reads at explicit offsets, no shared
    position, so every thread gets the rows it asked for."""
    import threading

    array, rows_file = half
    errors: list[str] = []

    def reader(seed: int) -> None:
        rng = np.random.default_rng(seed)
        for _ in range(200):
            rows = rng.integers(0, 500, 7)
            if not np.array_equal(rows_file.take(rows), array[rows]):
                errors.append(f"thread {seed}: wrong rows")
                return

    threads = [threading.Thread(target=reader, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
