"""What the machine gives this process: the CPUs it may run on, and the memory it may
still use (cgroup limits included)."""

from __future__ import annotations

import os
from pathlib import Path


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity mask where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def release_free_memory() -> None:
    """Give memory that the C allocator holds free back to the system (glibc's
    ``malloc_trim``): loading an ONNX model frees its protobuf copy into the heap, where it
    would stay resident. A no-op where the C library has no such call."""
    trim = getattr(_libc(), "malloc_trim", None)
    if trim is not None:
        trim(0)


#: ``madvise`` advice: drop the pages from this process's page tables (Linux)
_MADV_DONTNEED = 4


def release_library_pages() -> int:
    """Stop mapping the pages of shared libraries' read-only segments (code and constants)
    that this process has touched so far; returns the bytes they held.

    Loading a model runs code that searching never runs again (ONNX Runtime's graph
    optimizers, protobuf parsing, kernel registration: ~10-20 MiB of its library), and a
    mapped page counts in the process's resident memory until unmapped. The pages are clean
    copies of files: they stay in the page cache, and a page that is needed again is
    mapped again on first touch (a minor fault), so what stays resident is what the process
    goes on using (docs/benchmarks.md, "Edge profile"). Only mappings holding no private
    (anonymous) page are touched, so nothing written is ever dropped. Linux only: elsewhere
    nothing is done and 0 is returned."""
    libc = _libc()
    madvise = getattr(libc, "madvise", None)
    if madvise is None:
        return 0
    import _imp
    import ctypes

    madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    released = 0
    # no extension module is loaded between the scan and the advice (a library being
    # loaded maps its file read-only first, then its data over part of it, and writes
    # there); libraries loaded from C meanwhile are left out by library_spans: only a
    # library whose writable segment is already mapped is touched
    _imp.acquire_lock()
    try:
        try:
            with open("/proc/self/smaps", encoding="utf-8", errors="replace") as fh:
                spans = library_spans(fh.read())
        except (OSError, ValueError):
            return 0
        for start, end, resident in spans:
            if madvise(start, end - start, _MADV_DONTNEED) == 0:
                released += resident
    finally:
        _imp.release_lock()
    return released


def library_spans(smaps: str) -> list[tuple[int, int, int]]:
    """``(start, end, resident bytes)`` of every mapping in ``smaps`` (the text of
    ``/proc/PID/smaps``) that maps a shared library read-only and privately (``r-xp``,
    ``r--p``), holds resident pages and no anonymous one (a private page written, such as
    relocated constants: dropping it would lose what was written), and is not locked; and
    only of a library whose writable segment is mapped too, i.e. one loaded whole (while a
    library loads, its file is first mapped read-only in one piece, part of which becomes
    its written data a moment later)."""
    found: list[tuple[str, int, int, int]] = []
    loaded: set[str] = set()  # libraries with their writable segment mapped
    current: dict | None = None

    def keep(m: dict | None) -> None:
        if m is None or ".so" not in os.path.basename(m["path"]):
            return
        if m["perms"] == "rw-p":
            loaded.add(m["path"])
        if m["anon"] or not m["rss"] or m["locked"]:
            return
        if m["perms"] in ("r-xp", "r--p"):
            found.append((m["path"], m["start"], m["end"], m["rss"]))

    for line in smaps.splitlines():
        head, _, rest = line.partition(" ")
        if "-" in head and not head.endswith(":"):  # a mapping's first line
            keep(current)
            fields = rest.split(None, 4)
            start, _, end = head.partition("-")
            try:
                current = {
                    "start": int(start, 16),
                    "end": int(end, 16),
                    "perms": fields[0] if fields else "",
                    "path": fields[4].strip() if len(fields) > 4 else "",
                    "rss": 0,
                    "anon": 0,
                    "locked": False,
                }
            except ValueError:
                current = None
            if current is not None and not current["path"].startswith("/"):
                current = None  # the heap, the stack, anonymous memory, [vdso]...
        elif current is not None:
            if head == "Rss:":
                current["rss"] = int(rest.split()[0]) * 1024
            elif head == "Anonymous:":
                current["anon"] = int(rest.split()[0])
            elif head == "VmFlags:":
                current["locked"] = "lo" in rest.split()
    keep(current)
    return [(start, end, rss) for path, start, end, rss in found if path in loaded]


def _libc() -> object | None:
    """The C library's functions (those of the running process), or None."""
    import ctypes

    try:
        return ctypes.CDLL(None)  # no ctypes.util: it imports subprocess (~0.6 MiB)
    except (OSError, TypeError):  # TypeError: Windows has no "the running process"
        return None


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of process ``pid`` so far (Linux ``/proc``; None when
    it is gone or unknown)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            fields = fh.read().rsplit(b")", 1)[1].split()  # after the name (may hold spaces)
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, AttributeError):
        return None


def child_pids(pid: int) -> list[int]:
    """The live child processes of ``pid`` (Linux ``/proc``; empty elsewhere)."""
    out = []
    try:
        entries = [e for e in os.listdir("/proc") if e.isdigit()]
    except OSError:
        return out
    for entry in entries:
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                fields = fh.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(entry))
    return out


def available_memory() -> int:
    """Bytes of memory this process can still use: ``MemAvailable``, capped by a cgroup."""
    avail: int | None = None
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    avail = int(line.split()[1]) * 1024
                    break
    except (OSError, ValueError, IndexError):
        pass
    if avail is None:
        try:
            avail = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (AttributeError, OSError, ValueError):
            avail = 1 << 30
    headroom = _cgroup_headroom()
    return max(0, min(avail, headroom) if headroom is not None else avail)


def _cgroup_headroom() -> int | None:
    """Limit minus usage of this container's memory cgroup (v2, then v1); None if unlimited."""
    for limit_file, usage_file in (
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
        (
            "/sys/fs/cgroup/memory/memory.limit_in_bytes",
            "/sys/fs/cgroup/memory/memory.usage_in_bytes",
        ),
    ):
        try:
            limit = Path(limit_file).read_text().strip()
            usage = int(Path(usage_file).read_text().strip())
        except (OSError, ValueError):
            continue
        if limit == "max" or int(limit) >= 1 << 60:  # v1 writes "no limit" as ~2**63
            return None
        return int(limit) - usage
    return None
