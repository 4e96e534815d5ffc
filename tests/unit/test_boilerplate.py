"""Boilerplate on pages: tables of contents, indexes, dot leaders, running headers/footers."""

from __future__ import annotations

from snaprag.ingest.boilerplate import (
    clean_pages,
    is_contents_page,
    is_index_page,
    is_leader_line,
    running_lines,
)

TOC_WITH_LEADERS = """Table of Contents
1 Introduction . . . . . . . . . . . . . . . . 1
1.1 The R environment ............................ 2
1.2 Related software and documentation ........... 2
2 Simple manipulations . . . . . . . . . . . . . 8
2.1 Vectors and assignment ....................... 8
2.2 Vector arithmetic ............................ 9"""

TOC_WITHOUT_LEADERS = """Contents
1 Introduction 3
1.1 Scope 3
1.2 Terminology 4
2 Usage 5
2.1 Options 6
3 Limitations 9"""

KOREAN_TOC = """목차
제 1 장 알아두어야 할 기본 사항 1
1.1 간략한 역사 . . . . . . . . . . . . . . . 1
1.2 기초 . . . . . . . . . . . . . . . . . . . . 2
1.3 입력 파일 . . . . . . . . . . . . . . . . . 4
1.4 문서 레이아웃 . . . . . . . . . . . . . . . 9"""

INDEX_PAGE = """Index
quad, xxxvii
\\quarkmarks, 328, 330
question (counter), 300
questions and answers, 297–300
quotation (environment), 71, 130, 135,
138, 140, 283, 284, 467
R
r (position argument), 232, 233, 419, 421,
ragged2e (package), 175
raggedleft, 129"""

BODY = """The routines described below are to enable the easy production of tables.
It has been established over centuries of experience and should only be altered in
extraordinary circumstances. The layout of a table has been established over 1
century and more, and tables published in 1900 look much like those of 2020."""

# a table whose last column is numbers: not a table of contents (no leaders, values fall)
TABLE_PAGE = """Option Default value 40
width of the rule 10
height of the rule 8
depth of the box 12
space above the table 3
space below the table 5"""


def test_leader_lines() -> None:
    assert is_leader_line("Escape sequences . . . . . . . . . . . 35")
    assert is_leader_line("1.3 R and statistics.......................... 2")
    assert is_leader_line("2.4.7 줄임표 (...) . . . . . . . . . . . 20")
    assert is_leader_line("Preface …………… xii")
    assert not is_leader_line("See the manual... for details of version 2")
    assert not is_leader_line("The answer is 42")


def test_contents_pages_with_and_without_leaders() -> None:
    assert is_contents_page(TOC_WITH_LEADERS.split("\n"))
    assert is_contents_page(TOC_WITHOUT_LEADERS.split("\n"))
    assert is_contents_page(KOREAN_TOC.split("\n"))


def test_body_table_and_index_are_not_contents() -> None:
    assert not is_contents_page(BODY.split("\n"))
    assert not is_contents_page(TABLE_PAGE.split("\n"))
    assert not is_contents_page(INDEX_PAGE.split("\n"))


def test_index_page() -> None:
    assert is_index_page(INDEX_PAGE.split("\n"))
    assert is_index_page(["찾아보기", *[f"용어{i}, {i + 3}" for i in range(12)]])
    assert not is_index_page(BODY.split("\n"))
    assert not is_index_page(TOC_WITH_LEADERS.split("\n"))


def test_running_header_with_page_numbers_and_footer() -> None:
    words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa"]
    pages = [
        [f"Chapter {n // 4 + 1}. Getting started {n + 1}", f"The {words[n]} setting comes first."]
        + [f"Then {words[(n + i) % 10]} follows {words[i]}." for i in range(8)]
        + ["Draft - do not distribute"]
        for n in range(8)
    ]
    found = running_lines(pages)
    for n, page in enumerate(pages):
        assert (n, 0) in found  # the header carries the page's own number
        assert (n, len(page) - 1) in found  # the footer repeats on every page
        assert (n, 1) not in found  # body text is never running


def test_page_n_of_m_footers_even_on_two_pages() -> None:
    pages = [
        ["1. Coverage", "The frame is covered.", "Warranty Guide - page 1 of 2"],
        ["2. Claims", "Send a video.", "A/S 안내 - 2/2쪽"],
    ]
    assert running_lines(pages) == set()  # two footers that differ prove nothing
    pages[1][2] = "Warranty Guide - page 2 of 2"
    assert running_lines(pages) == {(0, 2), (1, 2)}


def test_running_roman_page_numbers_in_front_matter() -> None:
    numerals = ["i", "ii", "iii", "iv", "v", "vi"]
    pages = [[f"{numerals[n]} PREFACE", f"text of the preface, part {n}"] for n in range(6)]
    pages[0] = ["Preface", "text of the preface, part 0"]
    found = running_lines(pages)
    assert all((n, 0) in found for n in range(1, 6))
    assert (0, 0) not in found


def test_heading_at_top_of_page_is_kept() -> None:
    pages = [[f"Section {n} about topic {n}", "body " * 20, f"{n + 1}"] for n in range(6)]
    found = running_lines(pages)
    assert not any(i == 0 for _, i in found)


def test_clean_pages_drops_boilerplate_and_keeps_content() -> None:
    header = "Guide to tables"
    pages = [
        f"{header} 1\n{TOC_WITH_LEADERS}",
        f"{header} 2\n{BODY}\nSee also: Vector arithmetic . . . . . . . . . 9",
        f"{header} 3\n{BODY}",
        f"{header} 4\n{INDEX_PAGE}\n4",
    ]
    out = clean_pages(pages)
    assert [page.listing for page in out] == [True, False, False, True]
    assert out[0].text == "Table of Contents"  # the entries go, the page's title stays
    assert out[1].text == BODY  # header and leader line gone
    assert out[2].text == BODY
    assert out[3].text == "Index"


def test_clean_pages_keeps_a_document_that_would_vanish() -> None:
    pages = [TOC_WITH_LEADERS]  # a one-page document that is nothing but a list
    assert [page.text for page in clean_pages(pages)] == pages
