"""Safe access to source files: what a path is, before anything opens it.

Opening a FIFO for reading blocks until a writer appears, and a symlink loop makes
``Path.resolve`` raise; either used to stop (or hang) a whole ingest run. Everything that
touches a source goes through here, so a bad path becomes one failed source with a
one-line reason instead.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat

from ..errors import LoaderError

_KINDS = (
    (stat.S_ISFIFO, "FIFO"),
    (stat.S_ISSOCK, "socket"),
    (stat.S_ISCHR, "character device"),
    (stat.S_ISBLK, "block device"),
    (stat.S_ISDIR, "directory"),
)

UTF8_REASON = "file name is not valid UTF-8; rename it (e.g. convmv -f cp949 -t utf-8)"


def source_key(path: str | os.PathLike[str]) -> str:
    """The absolute, symlink-free path a source is stored under.

    ``os.path.realpath`` (not ``Path.resolve``): it never raises on a symlink loop.
    """
    return os.path.realpath(os.fspath(path))


def display(path: str) -> str:
    """``path`` as printable UTF-8: undecodable bytes of a file name shown as ``\\xNN``."""
    return path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def is_utf8(path: str) -> bool:
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def kind(mode: int) -> str:
    """A name for a non-regular file type (``"FIFO"``, ``"socket"``...)."""
    return next((name for test, name in _KINDS if test(mode)), "special file")


def stat_reason(path: str, exc: OSError) -> str:
    """A one-line reason for an ``os.stat`` / ``open`` failure on ``path``."""
    if exc.errno == errno.ELOOP:
        return "symlink loop (too many levels of symbolic links)"
    if exc.errno == errno.ENOENT:
        if os.path.islink(path):
            try:
                target = os.readlink(path)
            except OSError:
                target = "?"
            return f"dangling symlink (its target {display(target)!r} does not exist)"
        return "no such file or directory"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    return f"cannot read file: {exc.strerror or type(exc).__name__}"


def check_regular(path: str | os.PathLike[str]) -> os.stat_result:
    """``os.stat`` of a regular file (a symlink is followed); :class:`LoaderError` otherwise.

    Nothing is opened: a FIFO, a device or a socket is refused before it could block.
    """
    p = os.fspath(path)
    try:
        st = os.stat(p)
    except OSError as exc:
        raise LoaderError(stat_reason(p, exc)) from None
    except ValueError:  # an embedded NUL byte
        raise LoaderError("invalid file name") from None
    if not stat.S_ISREG(st.st_mode):
        raise LoaderError(f"not a regular file ({kind(st.st_mode)})")
    return st


def open_regular(path: str | os.PathLike[str]) -> int:
    """Open a regular file for reading, refusing anything else without blocking.

    ``check_regular`` runs first; the file could still be swapped for a FIFO between the
    check and the open, so it is opened non-blocking and checked again on the descriptor.
    Returns a file descriptor (blocking again); raises :class:`LoaderError`.
    """
    p = os.fspath(path)
    check_regular(p)
    try:
        fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise LoaderError(stat_reason(p, exc)) from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise LoaderError(f"not a regular file ({kind(mode)})")
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def file_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a regular file's bytes, read in blocks (bounded memory)."""
    h = hashlib.sha256()
    with os.fdopen(open_regular(path), "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_regular(path: str | os.PathLike[str], max_bytes: int) -> bytes:
    """The bytes of a regular file of at most ``max_bytes``; :class:`LoaderError` otherwise."""
    with os.fdopen(open_regular(path), "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        if size > max_bytes:
            raise LoaderError(f"file too large ({size} bytes > limit {max_bytes})")
        data = fh.read(max_bytes + 1)
    if len(data) > max_bytes:  # grew after the check
        raise LoaderError(f"file too large ({len(data)} bytes > limit {max_bytes})")
    return data
