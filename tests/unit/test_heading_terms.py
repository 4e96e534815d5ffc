"""The heading term: a query that is exactly a section's heading finds that section."""

from __future__ import annotations

from snaprag.index.bm25 import Bm25Index
from snaprag.index.heading_terms import (
    PREFIX,
    heading_term,
    section_terms,
    with_query_terms,
    with_section_terms,
)
from snaprag.index.tokenize import indexed_text, tokenize_many


def test_heading_term_ignores_case_spacing_and_punctuation() -> None:
    assert heading_term("2.1 Loading the package") == heading_term("2.1  loading THE package.")
    assert heading_term("Usage") != heading_term("1 Usage")  # the number is part of it
    assert heading_term("F") == f"{PREFIX}f"  # a one-letter heading makes no word term
    assert heading_term("사용법") == f"{PREFIX}사용법"
    assert heading_term(" . - ") is None


def test_long_headings_make_terms_of_bounded_size() -> None:
    long = "A heading that goes on " * 20
    term = heading_term(long)
    assert term is not None and len(term) <= 1 + 48
    assert term == heading_term(long.upper()) != heading_term(long + "x")


def test_only_the_innermost_heading_of_a_path_makes_a_term() -> None:
    assert section_terms("Options > Draft mode") == [heading_term("Draft mode")]
    assert section_terms("") == []


def test_a_query_that_is_a_heading_ranks_its_section_first() -> None:
    chunks = [  # (heading path, text)
        ("Introduction", "Usage notes: the usage of this package and its usage in documents."),
        ("Reference > Usage", "Load it in the preamble."),
        ("History", "Usage changed in 2020; the usage section was rewritten for usage."),
    ]
    texts = [indexed_text("Manual", text, section) for section, text in chunks]
    index = Bm25Index.build(with_section_terms(tokenize_many(texts), [s for s, _ in chunks]))
    ((ids, _),) = index.search_many(with_query_terms(tokenize_many(["Usage"]), ["Usage"]), 3)
    assert ids.tolist()[0] == 1
    # without the heading term, the chunks that repeat the word win
    ((plain, _),) = index.search_many(tokenize_many(["Usage"]), 3)
    assert plain.tolist()[0] != 1


def test_a_query_that_is_no_heading_is_ranked_as_before() -> None:
    texts = ["alpha beta gamma", "beta gamma delta", "gamma delta epsilon"]
    sections = ["Alpha", "Beta", "Gamma"]
    index = Bm25Index.build(with_section_terms(tokenize_many(texts), sections))
    query = ["which documents mention delta and gamma"]
    ((with_term, s1),) = index.search_many(with_query_terms(tokenize_many(query), query), 3)
    ((plain, s2),) = index.search_many(tokenize_many(query), 3)
    assert with_term.tolist() == plain.tolist()
    assert s1.tolist() == s2.tolist()


def test_a_search_process_does_not_load_openssl_for_heading_terms() -> None:
    """hashlib (OpenSSL's library, ~3.5 MiB resident) only for titles too long to keep."""
    import subprocess
    import sys

    code = (
        "import sys; from snaprag.index.heading_terms import heading_term; "
        "heading_term('Usage'); heading_term('How do I raise the desk with the buttons of "
        "the control box on its left side'); print('_hashlib' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "False", out.stderr


def test_an_engine_finds_a_short_section_by_its_heading(tmp_path) -> None:
    """End to end through ingest and search: a query that is a section's heading puts that
    section first, though other sections say its words more often (fails when either the
    chunk's or the query's heading term is left out)."""
    from snaprag.config import Config
    from snaprag.engine import Engine
    from snaprag.testing import HashEmbedder

    docs = tmp_path / "docs"
    docs.mkdir()
    filler = " ".join(f"word{i}" for i in range(60))
    (docs / "manual.md").write_text(
        "# Manual\n\n"
        f"## Options\n\nThe usage of options: usage, usage and usage again. {filler}\n\n"
        f"## Usage\n\nRun the tool from a shell with one file. {filler}\n\n"
        f"## Examples\n\nUsage examples show usage of the usage flag. {filler}\n",
        encoding="utf-8",
    )
    cfg = Config(index_dir=tmp_path / "index", cache=False)
    with Engine(cfg, embedder=HashEmbedder()) as engine:
        engine.ingest([docs])
        hits = engine.search("Usage", k=3, mode="bm25")
        assert hits and hits[0].section.endswith("Usage"), [h.section for h in hits]
