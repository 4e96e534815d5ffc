"""``snaprag eval --outline``: does search find the right page of your own PDFs?

No labels are needed: every bookmark of a PDF's outline is a query (its title) whose
answer is the page it points to. A title that several bookmarks share (``Introduction``
in every manual) is answered by any of their pages, since the query cannot tell them
apart. Hits are chunks; a ranking of pages is read from them, each page ranked by its
best chunk. Reported: page-level Recall@10 (the share of queries with a right page in
the top 10) and MRR@10, for the default pipeline and for each mode, next to a
**baseline**: plain BM25 over whole pages, each page's text exactly as the PDF's text
layer gives it (the same tokenizer as the index, nothing dropped, no headings), computed
in the same run over the same files.

The target is a folder of PDFs (ingested into a cached index under the cache directory,
like ``snaprag eval``'s collections) or an existing index directory (searched as it is;
the outlines are read from its sources, which must still exist).
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import Config
from ..engine import Engine
from ..errors import LoaderError, QueryError
from ..index import layout
from ..index.bm25 import Bm25Index
from ..index.tokenize import has_hangul, tokenize_many
from ..ingest.loaders.pdf import open_pdf, page_texts
from ..ingest.loaders.pdf_outline import read_outline
from ..ingest.model_choice import AUTO_MODEL
from ..search.base import MODES
from .metrics import mrr_at

#: chunks fetched per query, enough to rank well over ten distinct pages
CHUNKS_PER_QUERY = 100
CUTOFF = 10


@dataclass(frozen=True, slots=True)
class OutlineSet:
    """Queries made from the bookmarks of some PDFs, and the text of their pages."""

    queries: list[str]  # one per bookmark (same title and page once)
    relevant: list[frozenset[str]]  # page keys ("source#page") that answer each query
    pages: dict[str, str]  # page key -> its text, for the baseline
    sources: int  # PDFs with at least one usable bookmark


def page_key(source: str, page: int | None) -> str:
    return f"{source}#{page}"


def outline_set(pdfs: Sequence[Path]) -> OutlineSet:
    """Bookmark queries and page texts of ``pdfs`` (files that fail to load are skipped:
    the ingest reports them)."""
    bookmarks: list[tuple[str, str]] = []  # (title, page key)
    pages: dict[str, str] = {}
    sources = 0
    for path in pdfs:
        source = str(path.resolve())
        try:
            reader = open_pdf(path.read_bytes())
            texts = page_texts(reader)
            marks = read_outline(reader)
        except (LoaderError, OSError):
            continue
        for number, text in texts:
            pages[page_key(source, number)] = text
        usable = [(b.title, page_key(source, b.page)) for b in marks if _searchable(b.title)]
        sources += bool(usable)
        bookmarks.extend(usable)
    by_title: dict[str, set[str]] = {}
    for title, key in bookmarks:
        by_title.setdefault(_title_key(title), set()).add(key)
    seen: set[tuple[str, str]] = set()
    queries: list[str] = []
    relevant: list[frozenset[str]] = []
    for title, key in bookmarks:
        if (title, key) in seen:
            continue
        seen.add((title, key))
        queries.append(title)
        relevant.append(frozenset(by_title[_title_key(title)]))
    return OutlineSet(queries, relevant, pages, sources)


def _searchable(title: str) -> bool:
    return any(ch.isalnum() for ch in title)


def _title_key(title: str) -> str:
    return " ".join(title.casefold().split())


def page_scores(ranked_pages: Sequence[Sequence[str]], relevant: Sequence[frozenset[str]]) -> dict:
    """Recall@10 (a right page in the top 10) and MRR@10 over page rankings."""
    n = len(relevant)
    if not n:
        return {"recall@10": 0.0, "mrr@10": 0.0}
    found = sum(bool(set(r[:CUTOFF]) & rel) for r, rel in zip(ranked_pages, relevant, strict=True))
    mrr = sum(
        mrr_at(dict.fromkeys(rel, 1), r, CUTOFF)
        for r, rel in zip(ranked_pages, relevant, strict=True)
    )
    return {"recall@10": round(found / n, 4), "mrr@10": round(mrr / n, 4)}


def baseline_rankings(data: OutlineSet) -> list[list[str]]:
    """Pages ranked by plain BM25 over each page's whole text."""
    keys = list(data.pages)
    index = Bm25Index.build(tokenize_many([data.pages[k] for k in keys]))
    results = index.search_many(tokenize_many(data.queries), CUTOFF)
    return [[keys[i] for i in rows.tolist()] for rows, _ in results]


def hits_to_pages(hits: Sequence[Any]) -> list[str]:
    """Distinct pages in the order of their best chunk."""
    out: dict[str, None] = {}
    for hit in hits:
        out.setdefault(page_key(hit.source, hit.page), None)
    return list(out)


def _pdfs_under(folder: Path) -> list[Path]:
    found = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        found += [Path(dirpath) / f for f in sorted(filenames) if f.lower().endswith(".pdf")]
    return found


def _workdir(folder: Path, config: Config) -> Path:
    key = hashlib.sha1(
        (
            f"{folder}|{config.model or AUTO_MODEL}|{config.chunk_tokens}|{config.chunk_overlap}|"
            f"{config.quantization}|{config.vector_dtype}"
            # the quality profile's second model: its own index (unset: the keys as before)
            + (f"|second={config.second_model}" if config.second_model else "")
        ).encode()
    ).hexdigest()[:12]
    return config.cache_dir / "eval" / f"outline-{folder.name}-{key}"


def open_target(target: Path, **settings: Any) -> tuple[Engine, list[Path]]:
    """The engine to search and the PDFs whose outlines make the queries."""
    target = target.resolve()
    settings.setdefault("cache", False)  # measure the pipeline, not the query cache
    if (target / layout.DB_NAME).exists():  # an index: search it as it is
        engine = Engine(Config.from_env(index_dir=target, **settings))
        sources = [Path(s) for s in engine.store.sources() if s.lower().endswith(".pdf")]
        pdfs = [p for p in sources if p.is_file()]
        if sources and not pdfs:
            engine.close()
            raise QueryError(
                f"the PDFs indexed in {target} are gone from disk; their outlines are the "
                "queries, so run the evaluation where they are (or on their folder)"
            )
        return engine, pdfs
    if not target.is_dir():
        raise QueryError(f"{target}: expected a folder of PDFs or an index directory")
    pdfs = _pdfs_under(target)
    config = Config.from_env(**settings)
    engine = Engine(config.with_(index_dir=_workdir(target, config) / "index"))
    if pdfs:
        report = engine.ingest(pdfs, prune=False)
        indexed = set(engine.store.sources()) if engine.db_path.exists() else set()
        stale = indexed - {str(p.resolve()) for p in pdfs}
        for source in sorted(stale):  # files removed from the folder since the last run
            engine.delete(source)
        failed = {r.path for r in report.failed}
        pdfs = [p for p in pdfs if str(p.resolve()) not in failed]
    return engine, pdfs


def run(target: Path, preset: str | None = None, **settings: Any) -> dict[str, Any]:
    """The outline evaluation of ``target``; see the module notes."""
    if preset is not None:
        settings["model"] = preset
    engine, pdfs = open_target(target, **settings)
    try:
        data = outline_set(pdfs)
        if not data.queries:
            raise QueryError(
                f"no PDF under {target} has an outline (bookmarks) to make queries from; "
                "the outline evaluation needs PDFs with bookmarks"
            )
        t = time.perf_counter()
        modes: dict[str, dict[str, float]] = {}
        default = page_scores(
            [hits_to_pages(h) for h in engine.search_many(data.queries, k=CHUNKS_PER_QUERY)],
            data.relevant,
        )
        for mode in MODES:
            hits = engine.search_many(data.queries, k=CHUNKS_PER_QUERY, mode=mode)
            modes[mode] = page_scores([hits_to_pages(h) for h in hits], data.relevant)
        search_s = time.perf_counter() - t
        baseline = page_scores(baseline_rankings(data), data.relevant)
        korean = sum(has_hangul(q) for q in data.queries)
        stats = engine.stats()
    finally:
        engine.close()
    return {
        "target": str(target),
        "preset": stats["model"],
        "pdfs": data.sources,
        "pages": len(data.pages),
        "korean_queries": korean,
        "search_s": round(search_s, 2),
        "queries": len(data.queries),
        "default": default,
        "baseline": baseline,
        "modes": modes,
    }


def last_line(result: dict[str, Any]) -> dict[str, Any]:
    """The summary ``--json`` prints last: queries, default, baseline and modes."""
    return {k: result[k] for k in ("queries", "default", "baseline", "modes")}


def print_report(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=f"snaprag eval --outline — {result['target']} ({result['pdfs']} PDFs with "
        f"bookmarks, {result['pages']} pages, {result['queries']} queries, "
        f"{result['korean_queries']} in Korean; {result['preset']})"
    )
    for col in ("ranking", "page Recall@10", "page MRR@10"):
        table.add_column(col, justify="right" if col != "ranking" else "left")
    rows = [("default pipeline", result["default"])]
    rows += [(f"mode {m}", s) for m, s in result["modes"].items()]
    rows.append(("baseline: BM25 over whole pages", result["baseline"]))
    for name, scores in rows:
        table.add_row(name, f"{scores['recall@10']:.4f}", f"{scores['mrr@10']:.4f}")
    Console().print(table)
