"""Stage one of ingestion: find the sources and decide what needs doing.

``discover`` only looks at the file system (no index needed, nothing opened, nothing
written), so a caller can learn that a path does not exist before it creates an index
directory or takes the ingest lock. ``plan_one`` then reads the index to skip unchanged
sources (same SHA-256 of the bytes as stored, checked before any parsing) and turns the rest
into picklable :class:`WorkItem` s for the process stage.

Every bad path (missing, a symlink loop, a dangling symlink, a FIFO, an unreadable
directory, a name that is not UTF-8) becomes one ``failed`` result with a reason; the run
goes on. Directory symlinks are not followed while walking, so a link to an ancestor cannot
make the walk endless.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path

from ..errors import LoaderError
from ..index.base import DocumentStore
from .files import UTF8_REASON, check_regular, display, file_sha256, is_utf8, source_key
from .loaders import SUPPORTED_SUFFIXES, content_key
from .report import FAILED, IGNORED, UNCHANGED, IngestReport, SourceResult


@dataclass(frozen=True, slots=True)
class Candidate:
    """A file that passed discovery: a regular file of a supported type, not excluded."""

    path: str  # as found or given (may be a symlink): what the loader reads
    source: str  # absolute, symlinks resolved: the key the index stores it under
    explicit: bool  # named by the caller, not found by walking a directory


@dataclass(frozen=True, slots=True)
class WorkItem:
    """One source to load, chunk and embed; picklable, carries what the index knows of it."""

    path: str
    source: str
    indexed: bool = False  # the index has (part of) this source: "updated", not "added"
    #: complete documents already stored, ``{doc_id: document hash}``: not embedded again
    doc_hashes: Mapping[str, str] = field(default_factory=dict)
    #: documents cut short by an interrupted run, ``{doc_id: (resume key, chunks stored)}``
    pending: Mapping[str, tuple[str, int]] = field(default_factory=dict)


@dataclass
class Discovery:
    """Discovery's outcome, in walk order: candidates and already settled results."""

    roots: tuple[str, ...]
    exclude: tuple[str, ...] = ()
    entries: list[Candidate | SourceResult] = field(default_factory=list)

    @property
    def candidates(self) -> list[Candidate]:
        return [e for e in self.entries if isinstance(e, Candidate)]

    def report(self) -> IngestReport:
        """The report of a run that stops here (nothing to read): the settled results."""
        return IngestReport([e for e in self.entries if isinstance(e, SourceResult)])


class Excluder:
    """``--exclude`` glob patterns, fnmatch style (``*`` also matches ``/``).

    A path is excluded when a pattern matches its path relative to the root it was found
    under, or its absolute path, or one of their parent directories; ``**/`` at the start
    of a pattern also matches nothing, so ``**/scans/*`` excludes ``scans/a.pdf`` too.
    """

    def __init__(self, patterns: Iterable[str] = ()) -> None:
        self.patterns = tuple(p for p in patterns if p)
        forms: list[tuple[str, str]] = []
        for p in self.patterns:
            q = p.rstrip("/") or p
            while q.startswith("./"):  # relative paths are matched without it
                q = q[2:]
            forms.append((p, q))
            while q.startswith("**/"):
                q = q[3:]
                forms.append((p, q))
        self._forms = tuple(forms)

    def match(self, *paths: str) -> str | None:
        """The first pattern matching one of ``paths`` exactly, else None."""
        for pattern, form in self._forms:
            if any(fnmatchcase(p, form) for p in paths if p):
                return pattern
        return None

    def match_within(self, rel: str, absolute: str) -> str | None:
        """Like :meth:`match`, also trying every parent directory of both paths."""
        if not self._forms:
            return None
        for path in (rel, absolute):
            parts = path.split(os.sep)
            for i in range(len(parts), 0, -1):
                found = self.match(os.sep.join(parts[:i]))
                if found is not None:
                    return found
        return None


def discover(
    paths: Sequence[str | os.PathLike[str]],
    skip: Sequence[str | os.PathLike[str]] = (),
    exclude: Sequence[str] = (),
) -> Discovery:
    """Files named directly and files under directories, each checked without opening it.

    Hidden files and directories (``.git``, the index itself...) are not walked, nor are
    the directories in ``skip``. A source met twice (named and walked, two links) is kept
    once.
    """
    excluder = Excluder(exclude)
    skipped = {source_key(p) for p in skip}
    found = Discovery(tuple(os.fspath(p) for p in paths), excluder.patterns)
    seen: set[str] = set()

    def add(entry: Candidate | SourceResult) -> None:
        if isinstance(entry, Candidate):
            if entry.source in seen:
                return
            seen.add(entry.source)
        found.entries.append(entry)

    for root in found.roots:
        if os.path.isdir(root):
            _walk(root, skipped, excluder, add)
        else:
            add(_check(root, os.path.basename(root), True, excluder))
    return found


def _walk(
    root: str,
    skipped: set[str],
    excluder: Excluder,
    add: Callable[[Candidate | SourceResult], None],
) -> None:
    def unreadable(exc: OSError) -> None:
        where = str(exc.filename or root)
        denied = exc.errno in (errno.EACCES, errno.EPERM)
        reason = "permission denied" if denied else exc.strerror or str(exc)
        add(SourceResult(shown_path(where), FAILED, f"cannot read directory: {reason}"))

    # followlinks=False (the default): a directory symlink is reported, never entered
    for dirpath, dirnames, filenames in os.walk(root, onerror=unreadable):
        kept = []
        for d in sorted(dirnames):
            full = os.path.join(dirpath, d)
            if d.startswith(".") or source_key(full) in skipped:
                continue
            rel = os.path.relpath(full, root)
            pattern = excluder.match(rel, os.path.abspath(full))
            if pattern is not None:
                add(_excluded(full, pattern))
            elif os.path.islink(full):
                reason = "symlink to a directory, not followed (name its target to ingest it)"
                add(SourceResult(shown_path(full), IGNORED, reason))
            else:
                kept.append(d)
        dirnames[:] = kept
        for name in sorted(filenames):
            if not name.startswith("."):
                full = os.path.join(dirpath, name)
                add(_check(full, os.path.relpath(full, root), False, excluder))


def shown_path(path: str) -> str:
    """How a result names a path: resolved like a stored source, except a symlink, which is
    named itself (its target may be missing, or a loop, or not what the user knows)."""
    return display(os.path.abspath(path) if os.path.islink(path) else source_key(path))


def _excluded(path: str, pattern: str) -> SourceResult:
    return SourceResult(shown_path(path), IGNORED, f"excluded by --exclude {pattern}")


def _check(path: str, rel: str, explicit: bool, excluder: Excluder) -> Candidate | SourceResult:
    """A candidate, or why not: excluded, bad name, unsupported type, not a regular file."""
    source = source_key(path)
    shown = shown_path(path)
    pattern = excluder.match(rel, os.path.abspath(path), source)
    if pattern is not None:
        return _excluded(path, pattern)
    if not (is_utf8(path) and is_utf8(source)):
        return SourceResult(shown, FAILED, UTF8_REASON)
    suffix = Path(path).suffix.lower()
    try:
        if explicit:  # a named path that is broken is reported as such, whatever its suffix
            check_regular(path)
        if suffix not in SUPPORTED_SUFFIXES:
            supported = ", ".join(SUPPORTED_SUFFIXES)
            what = suffix or Path(path).name
            reason = f"unsupported file type '{what}' (supported: {supported})"
            return SourceResult(shown, FAILED if explicit else IGNORED, reason)
        check_regular(path)
    except LoaderError as exc:
        return SourceResult(shown, FAILED, str(exc))
    return Candidate(path, source, explicit)


def plan_one(
    candidate: Candidate, store: DocumentStore | None, max_file_bytes: int
) -> WorkItem | SourceResult:
    """The work for one candidate, or its result when there is none (unchanged, failed).

    Reads the index (``store``; None when there is no index yet) but never writes it.
    """
    stored = store.source(candidate.source) if store is not None else None
    try:
        st = check_regular(candidate.path)
        if st.st_size > max_file_bytes:
            reason = f"file too large ({st.st_size} bytes > limit {max_file_bytes})"
            return SourceResult(candidate.source, FAILED, reason)
        # hash before parsing: an unchanged source costs one read, not a PDF parse
        stored_hash = stored[1] if stored is not None else None
        if (
            stored_hash is not None
            and content_key(file_sha256(candidate.path), candidate.path) == stored_hash
        ):
            return SourceResult(candidate.source, UNCHANGED)
    except LoaderError as exc:
        return SourceResult(candidate.source, FAILED, str(exc))
    if stored is None or store is None:
        return WorkItem(candidate.path, candidate.source)
    return WorkItem(
        candidate.path,
        candidate.source,
        indexed=True,
        doc_hashes=store.document_hashes(stored[0]),
        pending=store.pending_documents(stored[0]),
    )


def plan(
    discovery: Discovery, store: DocumentStore | None, max_file_bytes: int
) -> list[WorkItem | SourceResult]:
    """``plan_one`` for every entry, in order (for runners that hand out work up front)."""
    return [
        plan_one(e, store, max_file_bytes) if isinstance(e, Candidate) else e
        for e in discovery.entries
    ]
