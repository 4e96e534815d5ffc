"""Read-only ``.npy`` arrays read with positioned reads (``os.pread``) instead of a mapping.

A memory-mapped file counts in the process's resident memory for every page a search
touched (and for the pages around it that Linux maps along). For data a query reads only
a little of (the float16 vectors rescored for its candidates, the BM25 postings of its
terms), :class:`PositionedArray` reads just those bytes into a fresh array: the file's
pages stay in the page cache, shared and reclaimable, and out of the process's RSS
(docs/benchmarks.md, "Edge profile"). Each read is a system call, so this is for reads of
tens to hundreds of rows, not for data scanned whole on every query.

The file is opened once and kept open, so a snapshot directory that is replaced or swept
while a reader still uses it stays readable, as a mapping would.
"""

from __future__ import annotations

import os
import weakref
from pathlib import Path
from typing import Any

import numpy as np

#: whether this platform has positioned reads (not Windows): callers memory-map otherwise
SUPPORTED = hasattr(os, "pread")
#: rows closer than this are read together, with what lies between them (two pages)
MERGE_GAP_BYTES = 8192


class PositionedArray:
    """The array of one ``.npy`` file (C order), opened without reading its data.

    ``take(rows)`` and ``take_runs(starts, lengths)`` read what they return; indexing with
    an integer array, a slice or an integer does the same. ``np.asarray`` reads it all.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        try:
            with os.fdopen(os.dup(fd), "rb") as fh:
                shape, fortran, dtype = _read_header(fh)
                offset = fh.tell()
        except BaseException:
            os.close(fd)
            raise
        if fortran and len(shape) > 1:
            os.close(fd)
            raise ValueError(f"{self.path}: Fortran-ordered arrays are not supported")
        if dtype.hasobject:
            os.close(fd)
            raise ValueError(f"{self.path}: object arrays cannot be read by position")
        self.shape: tuple[int, ...] = tuple(int(d) for d in shape)
        self.dtype: np.dtype = dtype
        self.ndim = len(self.shape)
        self._fd = fd
        self._offset = offset
        #: bytes of one row (one item of a 1-d array)
        self._row_bytes = int(dtype.itemsize * int(np.prod(self.shape[1:], dtype=np.int64)))
        expected = offset + self._row_bytes * (self.shape[0] if self.shape else 1)
        if os.fstat(fd).st_size < expected:
            os.close(fd)
            raise ValueError(f"{self.path} is truncated: {expected} bytes expected")
        self._closer = weakref.finalize(self, os.close, fd)

    # ------------------------------------------------------------------ array-like
    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of a 0-d array")
        return self.shape[0]

    @property
    def nbytes(self) -> int:
        return self._row_bytes * (self.shape[0] if self.shape else 1)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        whole = self.take_runs(np.zeros(1, np.int64), np.array([len(self)], np.int64))
        whole = whole.reshape(self.shape)
        return whole if dtype is None else whole.astype(dtype, copy=False)

    def __getitem__(self, key: Any) -> np.ndarray:
        if isinstance(key, slice):
            return self.take(np.arange(*key.indices(len(self)), dtype=np.int64))
        if isinstance(key, int | np.integer):
            return self.take(np.array([int(key)], np.int64))[0]
        rows = np.asarray(key)
        if rows.dtype == np.bool_:
            return self.take(np.flatnonzero(rows))
        return self.take(rows)

    def close(self) -> None:
        self._closer()

    # ------------------------------------------------------------------ reads
    def take(self, rows: np.ndarray) -> np.ndarray:
        """``array[rows]`` for an integer array ``rows`` (any order, repeats allowed).

        Rows less than :data:`MERGE_GAP_BYTES` apart are read in one call with the rows
        between them: a system call costs more than copying a few kilobytes."""
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        n = len(self)
        if rows.size and (int(rows.min()) < -n or int(rows.max()) >= n):
            raise IndexError(f"row index out of range for {n} rows")
        rows = np.where(rows < 0, rows + n, rows)
        if rows.size == 0:
            return np.empty((0, *self.shape[1:]), dtype=self.dtype)
        wanted = np.sort(rows)  # sorted, once each (np.unique would import numpy.ma)
        wanted = wanted[np.concatenate(([True], wanted[1:] != wanted[:-1]))]
        gap = max(1, MERGE_GAP_BYTES // max(self._row_bytes, 1))
        firsts = np.concatenate(([0], np.flatnonzero(np.diff(wanted) > gap) + 1))
        span_starts = wanted[firsts]
        span_ends = np.append(wanted[firsts[1:] - 1], wanted[-1]) + 1
        span_lengths = span_ends - span_starts
        spans = self.take_runs(span_starts, span_lengths)
        # where each asked row landed among the spans read
        span_of = np.searchsorted(span_starts, rows, side="right") - 1
        base = np.cumsum(span_lengths) - span_lengths
        return spans[base[span_of] + rows - span_starts[span_of]]

    def take_runs(self, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """The rows ``starts[i] : starts[i] + lengths[i]`` for every ``i``, concatenated
        (the postings of several terms of a CSC matrix, say)."""
        starts = np.asarray(starts, dtype=np.int64).reshape(-1)
        lengths = np.asarray(lengths, dtype=np.int64).reshape(-1)
        keep = lengths > 0
        starts, lengths = starts[keep], lengths[keep]
        if starts.size and (int(starts.min()) < 0 or int((starts + lengths).max()) > len(self)):
            raise IndexError(f"run out of range for {len(self)} rows")
        out = np.empty((int(lengths.sum()), *self.shape[1:]), dtype=self.dtype)
        self._read_runs(out, starts, lengths)
        return out

    def _read_runs(self, out: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> None:
        """Fill ``out`` (C-contiguous) with the runs, one read per run."""
        if out.size == 0:  # nothing to read (and a view of zero rows cannot be cast)
            return
        view = memoryview(out).cast("B")
        width = self._row_bytes
        sizes = lengths * width
        ends = np.cumsum(sizes)
        offsets = self._offset + starts * width
        fd = self._fd
        # one system call per run; the loop does nothing else (~1 us a row, measured)
        for offset, end, size in zip(offsets.tolist(), ends.tolist(), sizes.tolist(), strict=True):
            into = view[end - size : end]
            if _preadv is None or _preadv(fd, [into], offset) != size:
                _read_exactly(fd, into, offset)


def _read_header(fh: Any) -> tuple[tuple[int, ...], bool, np.dtype]:
    version = np.lib.format.read_magic(fh)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(fh)
    if version == (2, 0):
        return np.lib.format.read_array_header_2_0(fh)
    raise ValueError(f".npy format {version} is not supported")  # 3.0: UTF-8 field names


_preadv = getattr(os, "preadv", None)


def _read_exactly(fd: int, into: memoryview, offset: int) -> None:
    """Fill ``into`` from ``fd`` at ``offset`` (a read may return less than asked; reading
    what was already read again is harmless)."""
    done, size = 0, len(into)
    while done < size:
        if _preadv is not None:
            got = _preadv(fd, [into[done:]], offset + done)
        else:  # no preadv (macOS before 11): pread into bytes, then copy
            chunk = os.pread(fd, size - done, offset + done)
            got = len(chunk)
            into[done : done + got] = chunk
        if got == 0:
            raise EOFError(f"file ended {size - done} bytes early at offset {offset + done}")
        done += got


def gather_runs(array: Any, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """``array[starts[i] : starts[i] + lengths[i]]`` for every ``i``, concatenated, for an
    in-memory or memory-mapped array or a :class:`PositionedArray`."""
    if isinstance(array, PositionedArray):
        return array.take_runs(starts, lengths)
    lengths = np.asarray(lengths, dtype=np.int64)
    starts = np.asarray(starts, dtype=np.int64)
    # positions of every run's items without a loop: offset each run so that
    # arange(total) lands on its own items
    run_begin = np.cumsum(lengths) - lengths
    positions = np.arange(int(lengths.sum()), dtype=np.int64) + np.repeat(
        starts - run_begin, lengths
    )
    return np.asarray(array[positions])
