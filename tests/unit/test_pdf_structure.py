"""Headings of PDF pages: from bookmarks, or from numbering in the text layer."""

from __future__ import annotations

import pytest

from snaprag.ingest.loaders.pdf_outline import Bookmark
from snaprag.ingest.loaders.pdf_structure import follows, numbered_heading, pdf_sections


def mark(path: tuple[str, ...], page: int) -> Bookmark:
    return Bookmark(path[-1], page, len(path) - 1, path)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("1 Introduction", (1,)),
        ("2.3 Vector arithmetic", (2, 3)),
        ("2.3. Vector arithmetic", (2, 3)),
        ("10.1.4 The recycling rule", (10, 1, 4)),
        ("Chapter 4 Lists and data frames", (4,)),
        ("제 3 장 수식", (3,)),
        ("1.6.2 패키지", (1, 6, 2)),
        ("1. Warranty coverage", (1,)),
        ("2. 출장 수리 비용과 처리 기간", (2,)),
    ],
)
def test_numbered_headings(line: str, expected: tuple[int, ...]) -> None:
    found = numbered_heading(line)
    assert found is not None and found[0] == expected


@pytest.mark.parametrize(
    "line",
    [
        "1. Install the package first.",  # a list item: it ends a sentence
        "1. Install the package on every machine of the lab",  # too long for "N." headings
        "2 cups of flour",  # one level, lower case: a sentence going on
        "3.14 is close to pi, as everyone knows.",  # ends a sentence
        "1.5 2.3 4.5",  # a row of numbers
        "12 the quick brown fox jumps over the lazy dog and keeps running far away",
        "Appendix B Figures",  # lettered: no count to check
        "",
    ],
)
def test_not_headings(line: str) -> None:
    assert numbered_heading(line) is None


def test_follows_accepts_only_the_next_number() -> None:
    assert follows((), (1,))
    assert follows((), (1, 1))
    assert not follows((), (4,))
    assert follows((2,), (2, 1))
    assert follows((2, 3), (2, 4))
    assert follows((2, 3), (2, 5))  # one heading missed
    assert follows((2, 3), (3,))
    assert follows((2, 3, 1), (3,))
    assert not follows((2, 3), (2, 3))  # a running header repeating the heading
    assert not follows((2, 3), (1,))  # a numbered list restarting
    assert not follows((2, 3), (2, 9))
    assert not follows((2,), (2, 2))


def test_sections_from_bookmarks_split_pages_at_their_headings() -> None:
    pages = [
        (1, "Manual\nTable of Contents"),
        (2, "1 Getting started\nInstall it.\n1.1 Requirements\nA computer."),
        (3, "More about requirements.\n1.2 Why is it named R?\nBecause of its authors."),
        (4, "2 Advanced use\nUse it well."),
    ]
    marks = [
        mark(("Getting started",), 2),
        mark(("Getting started", "Requirements"), 2),
        mark(("Getting started", "Why is it named R?"), 3),
        mark(("Advanced use",), 4),
    ]
    got = [(s.page, s.path, s.text) for s in pdf_sections(pages, marks)]
    assert got == [
        (1, "", "Manual\nTable of Contents"),
        (2, "Getting started", "1 Getting started\nInstall it."),
        (2, "Getting started > Requirements", "1.1 Requirements\nA computer."),
        (3, "Getting started > Requirements", "More about requirements."),
        (
            3,
            "Getting started > Why is it named R?",
            "1.2 Why is it named R?\nBecause of its authors.",
        ),
        (4, "Advanced use", "2 Advanced use\nUse it well."),
    ]


def test_bookmark_found_wrapped_case_folded_or_not_at_all() -> None:
    pages = [
        (1, "Intro text.\nA VERY LONG HEADING THAT THE\nTYPESETTER WRAPPED\nBody."),
        (2, "Body of a chapter whose title is drawn as an image."),
    ]
    marks = [
        mark(("A very long heading that the typesetter wrapped",), 1),
        mark(("Pictures",), 2),
    ]
    got = [(s.page, s.path, s.text.split("\n")[0]) for s in pdf_sections(pages, marks)]
    assert got == [
        (1, "", "Intro text."),
        (1, "A very long heading that the typesetter wrapped", "A VERY LONG HEADING THAT THE"),
        (2, "Pictures", "Body of a chapter whose title is drawn as an image."),
    ]


def test_sections_from_numbered_headings_without_an_outline() -> None:
    pages = [
        (1, "Publication quality tables\n1 Introduction\nThe routines described below."),
        (2, "1. First list item\n2. Second list item\n1.1 A note on terminology\nRules."),
        (3, "2 The layout of formal tables\nNever use vertical rules."),
    ]
    got = [(s.page, s.path) for s in pdf_sections(pages, [])]
    assert got == [
        (1, ""),
        (1, "1 Introduction"),
        (2, "1 Introduction"),
        (2, "1 Introduction > 1.1 A note on terminology"),
        (3, "2 The layout of formal tables"),
    ]


def test_dotted_headings_are_told_from_numbered_lists() -> None:
    pages = [
        (1, "1. Warranty coverage\nThe frame is covered for seven years."),
        (2, "2. How to make a claim\n1. Find the serial number\n2. Take a video\nWe answer."),
        (3, "3. Exclusions\nDamage from loads above 120 kg."),
    ]
    got = [(s.page, s.path) for s in pdf_sections(pages, [])]
    assert got == [
        (1, "1. Warranty coverage"),
        (2, "2. How to make a claim"),
        (3, "3. Exclusions"),
    ]


INDEX_PAGE = """Index
quad, xxxvii
\\quarkmarks, 328, 330
question (counter), 300
R
r (position argument), 232, 233, 419, 421,
ragged2e (package), 175
raggedleft, 129"""


USAGE = "1 Usage\n" + "Load the package and go on writing the document as before.\n" * 12


def test_a_listing_page_keeps_the_headings_that_start_on_it() -> None:
    # the index's own bookmark ("Index") still names what is left of its page, so a search
    # for it finds the page; the letter groups, dropped with the entries, do not take over
    # the "Index" line; a page the index continues on inherits nothing
    pages = [
        (1, USAGE),
        (2, INDEX_PAGE),
        (3, "raggedright, 130\nrule, 12, 14\nS\nsection, 3, 4\nsubsection, 5\nsummary, 8"),
    ]
    marks = [
        mark(("Usage",), 1),
        mark(("Index",), 2),
        mark(("Index", "Q"), 2),
        mark(("Index", "R"), 2),
        mark(("Index", "S"), 3),
    ]
    got = [(s.page, s.path, s.text) for s in pdf_sections(pages, marks)]
    assert got == [(1, "Usage", USAGE.strip()), (2, "Index", "Index")]


def test_a_listing_page_under_a_heading_from_an_earlier_page_inherits_nothing() -> None:
    pages = [
        (1, USAGE),
        (2, "Contents\n1 Usage 1\n2 Options 3\n3 Examples 4\n4 History 5\n5 Index 6"),
    ]
    got = [(s.page, s.path, s.text) for s in pdf_sections(pages, [mark(("Usage",), 1)])]
    assert got == [(1, "Usage", USAGE.strip()), (2, "", "Contents")]


def test_a_heading_not_printed_does_not_take_the_line_of_one_that_is() -> None:
    pages = [(1, "Body before.\n2 Options\nThe options are few.")]
    marks = [mark(("Options",), 1), mark(("Options", "Drawn as a picture"), 1)]
    got = [(s.path, s.text) for s in pdf_sections(pages, marks)]
    assert got == [("", "Body before."), ("Options", "2 Options\nThe options are few.")]
