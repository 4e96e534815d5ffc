"""Why the outline evaluation misses: every query whose right page is not in the default
pipeline's top 10, put in one category, with counts and examples.

    python scripts/outline_misses.py /tmp/outline/dev-en [--cache DIR] [--examples 5]
        [--json misses.json]

The folder is ingested (or its cached index reused) exactly as ``snaprag eval --outline``
does; pass the same ``--cache`` (``SNAPRAG_CACHE_DIR``) to reuse that run's index. Each
miss gets the first category that applies, in this order:

``no_text``       the bookmarked page has no text layer (nothing could find it)
``listing_page``  every bookmarked page is a contents or index page (its entries are
                  dropped at ingest on purpose)
``no_chunk``      the page has text but no chunk of the index sits on it
``short_title``   the title has at most two letters or digits ("F", "A.1")
``heading_lost``  no chunk on the page carries the title in its heading path
``outranked_*``   the title is in the page's heading path but other pages rank above it;
                  split by what the best wrong chunk is: ``same_heading`` (its heading path
                  holds the title too: a same-titled section of another document or page
                  that this bookmark does not point to), ``title_in_text`` (its own text
                  holds the title's words in a row), ``other``.

Besides the category, each miss says how many documents share its title (a title shared
by many small manuals) and where the right page ranked (11-100, or beyond).
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
from collections import defaultdict
from pathlib import Path

ORDER = (
    "no_text",
    "listing_page",
    "no_chunk",
    "short_title",
    "heading_lost",
    "outranked_same_heading",
    "outranked_title_in_text",
    "outranked_other",
)


def letters(text: str) -> str:
    return "".join(ch for ch in text.casefold() if ch.isalnum())


def words(text: str) -> str:
    return " ".join("".join(ch if ch.isalnum() else " " for ch in text.casefold()).split())


def in_path(section: str, title: str) -> bool:
    """Whether one heading of ``section`` ("A > B") is ``title``, maybe numbered."""
    want = letters(title)
    return any(
        (got := letters(h)) == want or (got.endswith(want) and len(got) - len(want) <= 12)
        for h in section.split(" > ")
    )


def listing_pages(pdfs: list[Path]) -> dict[str, bool]:
    """``source#page`` -> whether the loader's boilerplate pass took it for a listing."""
    from snaprag.errors import LoaderError
    from snaprag.ingest.boilerplate import clean_pages
    from snaprag.ingest.loaders.pdf import open_pdf, page_texts

    out: dict[str, bool] = {}
    for path in pdfs:
        try:
            pages = page_texts(open_pdf(path.read_bytes()))
        except (LoaderError, OSError):
            continue
        cleaned = clean_pages([t for _, t in pages])
        for (number, _), page in zip(pages, cleaned, strict=True):
            out[f"{path.resolve()}#{number}"] = page.listing
    return out


def chunks_by_page(db: Path) -> dict[str, list[tuple[str, str]]]:
    """``source#page`` -> its chunks' ``(heading path, text)``."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    rows = conn.execute(
        "SELECT s.path, c.page, c.section, c.text FROM chunks c "
        "JOIN documents d ON d.id=c.document_id JOIN sources s ON s.id=d.source_id"
    ).fetchall()
    conn.close()
    out: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for path, page, section, text in rows:
        out[f"{path}#{page}"].append((section, text))
    return out


def classify(
    title: str,
    relevant: frozenset[str],
    hits: list,
    pages: dict[str, str],
    listing: dict[str, bool],
    chunks: dict[str, list[tuple[str, str]]],
) -> str:
    if not any(key in pages for key in relevant):
        return "no_text"
    with_text = [key for key in relevant if key in pages]
    if all(listing.get(key, False) for key in with_text):
        return "listing_page"
    if not any(chunks.get(key) for key in with_text):
        return "no_chunk"
    if len(letters(title)) <= 2:
        return "short_title"
    if not any(in_path(s, title) for key in with_text for s, _ in chunks.get(key, [])):
        return "heading_lost"
    wrong = next((h for h in hits if f"{h.source}#{h.page}" not in relevant), None)
    if wrong is not None and in_path(wrong.section, title):
        return "outranked_same_heading"
    if wrong is not None and words(title) in words(wrong.text):
        return "outranked_title_in_text"
    return "outranked_other"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--cache", type=Path, help="cache directory (SNAPRAG_CACHE_DIR)")
    parser.add_argument("--examples", type=int, default=5)
    parser.add_argument("--json", type=Path, help="write every miss here")
    args = parser.parse_args()
    if args.cache is not None:
        os.environ["SNAPRAG_CACHE_DIR"] = str(args.cache)
    from snaprag.bench import outline

    engine, pdfs = outline.open_target(args.folder)
    try:
        data = outline.outline_set(pdfs)
        batches = engine.search_many(data.queries, k=outline.CHUNKS_PER_QUERY)
        db = engine.db_path
    finally:
        engine.close()
    listing = listing_pages(pdfs)
    chunks = chunks_by_page(db)
    docs_of = {
        q: len({k.split("#")[0] for k in rel})
        for q, rel in zip(data.queries, data.relevant, strict=True)
    }
    misses: list[dict] = []
    for query, relevant, hits in zip(data.queries, data.relevant, batches, strict=True):
        ranked = outline.hits_to_pages(hits)
        if set(ranked[: outline.CUTOFF]) & relevant:
            continue
        rank = next((i + 1 for i, p in enumerate(ranked) if p in relevant), None)
        category = classify(query, relevant, hits, data.pages, listing, chunks)
        wrong = next((h for h in hits if f"{h.source}#{h.page}" not in relevant), None)
        misses.append(
            {
                "title": query,
                "category": category,
                "documents_sharing_title": docs_of[query],
                "rank": rank,
                "relevant": sorted(relevant),
                "first_wrong": None
                if wrong is None
                else f"{Path(wrong.source).name}#{wrong.page} [{wrong.section}] "
                f"{' '.join(wrong.text.split())[:80]}",
            }
        )
    n = len(data.queries)
    print(f"{args.folder}: {n} queries, {len(misses)} misses (R@10 {1 - len(misses) / n:.4f})")
    for category in ORDER:
        group = [m for m in misses if m["category"] == category]
        if not group:
            continue
        shared = sum(m["documents_sharing_title"] > 1 for m in group)
        near = sum(m["rank"] is not None for m in group)
        print(
            f"\n{category}: {len(group)} ({shared} with a title shared by several documents; "
            f"{near} ranked 11-100)"
        )
        shown = {m["title"]: m for m in group}  # one example per title
        for m in list(shown.values())[: args.examples]:
            page = Path(m["relevant"][0]).name
            print(f"  {m['title']!r} -> {page} (rank {m['rank']}); first wrong: {m['first_wrong']}")
    if args.json is not None:
        args.json.write_text(json.dumps({"queries": n, "misses": misses}, indent=1))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
