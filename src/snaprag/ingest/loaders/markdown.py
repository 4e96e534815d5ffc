r"""Markdown files, reduced to readable plain text.

Every step runs in time linear in the length of the file, whatever it holds. Inline markup
is therefore not removed with patterns such as ``\*(.+?)\*``: a search for one restarts at
every opener and scans to the end of the line when nothing closes it, so a line of
``*a *a *a ...`` takes quadratic time. The scanners below find the same matches (the tests
compare them with those patterns) from precomputed closer positions instead.
"""

from __future__ import annotations

import html
import re
from bisect import bisect_left
from collections.abc import Callable
from pathlib import Path

from ...types import Document
from ._text import (
    clean_title,
    decode_text,
    heading_sections,
    make_document,
    normalize_text,
    require_text,
)

_FENCE_RE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_FRONT_MATTER_RE = re.compile(r"\A---[ \t]*\n(.*?)\n(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.DOTALL)
_FRONT_TITLE_RE = re.compile(r"^title:", re.MULTILINE)
_ATX_RE = re.compile(r" {0,3}(#+)")
_SETEXT_RE = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_RULE_RE = re.compile(r"^ {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$")
_TABLE_SEP_RE = re.compile(r"^ {0,3}\|?[ \t]*:?-+:?[ \t]*(\|[ \t]*:?-+:?[ \t]*)*\|?[ \t]*$")
_REF_DEF_RE = re.compile(r"^ {0,3}\[[^\]]+\]:\s+\S+.*$")
_QUOTE_RE = re.compile(r"^ {0,3}(?:>[ \t]?)+")
_BULLET_RE = re.compile(r"^(\s*)[*+-][ \t]+(?:\[[ xX]\][ \t]+)?")
_AUTOLINK_RE = re.compile(r"<(?:https?|ftp|mailto):")
_AUTOLINK_END_RE = re.compile(r"[>\s]")
_HTML_TAG_RE = re.compile(r"</?[A-Za-z][A-Za-z0-9-]*(?:\s[^<>]*)?/?>")
_TICKS_RE = re.compile(r"`+")
_ESCAPE_RE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!|>~<])")
_SPAN_RE = re.compile(r"\x00(\d+)\x00")


class _Delimited:
    """``re.sub(OPEN(.+?)CLOSE, r"<content>")`` for emphasis-like markup, in linear time.

    ``opener`` and ``closer`` are zero-width patterns whose group 1 is the delimiter at a
    position where it may open or close; a span is an opener and the first closer of the
    same delimiter at least one character later, on the same line, as the lazy pattern
    would find it.
    """

    def __init__(self, opener: str, closer: str) -> None:
        self.opener = re.compile(opener)
        self.closer = re.compile(closer)

    def sub(self, text: str) -> str:
        if "\n" in text:  # "." stops at a newline: each line on its own
            return "\n".join(self.sub(line) for line in text.split("\n"))
        closers: dict[str, list[int]] = {}
        for m in self.closer.finditer(text):
            closers.setdefault(m.group(1), []).append(m.start())
        if not closers:
            return text
        out: list[str] = []
        pos = 0
        for m in self.opener.finditer(text):
            start, delim = m.start(), m.group(1)
            ends = closers.get(delim)
            if start < pos or not ends:
                continue
            k = bisect_left(ends, start + len(delim) + 1)
            if k == len(ends):
                continue  # nothing closes it (nor any later opener of this delimiter)
            out += (text[pos:start], text[start + len(delim) : ends[k]])
            pos = ends[k] + len(delim)
        out.append(text[pos:])
        return "".join(out)


# the delimiter must touch the text it encloses: "**a**", not "** a **"
_STRONG = _Delimited(r"(?=(\*\*|__)\S)", r"(?<=\S)(?=(\*\*|__))")
_EM_STAR = _Delimited(r"(?<![\w*])(?=(\*)\S)", r"(?<=\S)(?=(\*)(?![\w*]))")
_EM_UNDER = _Delimited(r"(?<![\w_])(?=(_)\S)", r"(?<=\S)(?=(_)(?![\w_]))")
_STRIKE = _Delimited(r"(?=(~~)\S)", r"(?<=\S)(?=(~~))")


class MarkdownLoader:
    """Reads ``.md`` / ``.markdown`` files as plain text.

    Markup goes (heading marks, emphasis, link and image syntax, HTML tags, table rules,
    YAML front matter); code blocks stay, as text without their fences. The title is the
    front-matter ``title``, else the first level-1 heading, else the file stem.
    """

    type: str = "md"
    suffixes: tuple[str, ...] = (".md", ".markdown")

    def load(self, path: Path, data: bytes) -> list[Document]:
        source = normalize_text(decode_text(data))
        title, lines, headings = _convert(source)
        require_text(normalize_text("\n".join(lines)))
        sections = heading_sections(_blocks(lines, headings))
        return [make_document(path, self.type, title or path.stem, sections)]


def markdown_to_text(source: str) -> tuple[str, str]:
    """Return ``(title, text)`` for a Markdown document; ``title`` may be empty."""
    title, lines, _ = _convert(source)
    return title, "\n".join(lines)


def _blocks(lines: list[str], headings: dict[int, int]) -> list[tuple[int, str]]:
    """``(level, text)`` blocks for :func:`heading_sections`: each heading line alone, the
    lines between headings as one body block."""
    blocks: list[tuple[int, str]] = []
    body: list[str] = []
    for i, line in enumerate(lines):
        if i in headings:
            blocks.append((0, "\n".join(body)))
            body = []
            blocks.append((headings[i], line))
        else:
            body.append(line)
    blocks.append((0, "\n".join(body)))
    return blocks


def _convert(source: str) -> tuple[str, list[str], dict[int, int]]:
    """The title, the text as lines and ``{line index: level}`` of the heading lines."""
    title = ""
    headings: dict[int, int] = {}
    front = _FRONT_MATTER_RE.match(source)
    if front:
        title = clean_title(_front_title(front.group(1)).strip("'\""))
        source = source[front.end() :]
    source = _drop_html_comments(source)

    out: list[str] = []
    fence: str | None = None
    for line in source.split("\n"):
        if fence is not None:
            if line.strip().startswith(fence) and not line.strip().strip(fence[0]):
                fence = None
                out.append("")
            else:
                out.append(line)
            continue
        opened = _FENCE_RE.match(line)
        if opened:
            fence = opened.group(1)
            out.append("")
            continue
        heading = _atx_heading(line)
        if heading:
            level, text = heading[0], _inline(heading[1])
            if not title and level == 1 and text:
                title = clean_title(text)
            if text.strip():
                headings[len(out) + 1] = level
            out.extend(["", text, ""])
            continue
        if _SETEXT_RE.match(line) and out and out[-1].strip():
            # "Title\n=====": the line above is the heading text, already emitted.
            if not title and line.strip().startswith("="):
                title = clean_title(out[-1])
            if len(out) < 2 or not out[-2].strip():  # a one-line paragraph, not a wrap
                headings[len(out) - 1] = 1 if line.strip().startswith("=") else 2
            out.append("")
            continue
        if _RULE_RE.match(line):
            out.append("")
            continue
        if "|" in line and _TABLE_SEP_RE.match(line):
            continue  # the |---|---| row under a table header
        if _REF_DEF_RE.match(line):
            continue
        out.append(_block_line(line))
    return title, out, headings


def _front_title(front: str) -> str:
    """The ``title:`` of YAML front matter, as ``^title:\\s*(.+?)\\s*$`` (multi-line) reads
    it: the first non-blank text after the key, up to the end of its line."""
    for found in _FRONT_TITLE_RE.finditer(front):
        rest = front[found.end() :].lstrip()
        if rest:
            return rest.split("\n", 1)[0].rstrip()
    return ""


def _atx_heading(line: str) -> tuple[int, str] | None:
    """``(level, text)`` of an ATX heading line (``## Text ##``), or None.

    What ``^ {0,3}(#{1,6})(?:[ \\t]+(.*?))?(?:[ \\t]+#+)?[ \\t]*$`` matches, without its
    quadratic backtracking on a long run of spaces inside the heading.
    """
    opened = _ATX_RE.match(line)
    if opened is None or len(opened.group(1)) > 6:
        return None
    rest = line[opened.end() :]
    if not rest:
        return len(opened.group(1)), ""
    if rest[0] not in " \t":
        return None
    text = rest.lstrip(" \t").rstrip(" \t")
    unclosed = text.rstrip("#")
    if unclosed != text and unclosed[-1:] in (" ", "\t"):  # a closing "###" run
        text = unclosed.rstrip(" \t")
    return len(opened.group(1)), text


def _drop_html_comments(source: str) -> str:
    """``<!--.*?-->`` (across lines) removed; openers after the last ``-->`` are left alone
    rather than each scanned to the end of the file."""
    last = source.rfind("-->")
    if last < 0:
        return source
    return re.sub(r"<!--.*?-->", "", source[: last + 3], flags=re.DOTALL) + source[last + 3 :]


def _block_line(line: str) -> str:
    line = _QUOTE_RE.sub("", line)
    line = _BULLET_RE.sub(r"\1- ", line)
    stripped = line.strip()
    if stripped.startswith("|") and stripped.endswith("|") and len(stripped) > 1:
        cells = [c.strip() for c in stripped[1:-1].split("|")]
        line = " | ".join(c for c in cells if c)
    return _inline(line)


def _inline(text: str) -> str:
    """Strip inline markup from one line, keeping code spans' contents verbatim."""
    spans: list[str] = []

    def keep(content: str) -> str:
        spans.append(content.strip())
        return f"\x00{len(spans) - 1}\x00"

    text = _code_spans(text, keep)
    text = _bracketed(text, "![", 0, "(", ")")  # ![alt](src) -> alt
    text = _bracketed(text, "[", 1, "(", ")")  # [text](url) -> text
    text = _bracketed(text, "[", 1, "[", "]")  # [text][ref] -> text
    text = _autolinks(text)
    text = _HTML_TAG_RE.sub("", text)
    text = _STRONG.sub(text)
    text = _EM_STAR.sub(text)
    text = _EM_UNDER.sub(text)
    text = _STRIKE.sub(text)
    text = _ESCAPE_RE.sub(r"\1", text)
    text = html.unescape(text)
    return _SPAN_RE.sub(lambda m: spans[int(m.group(1))], text)


def _code_spans(text: str, keep: Callable[[str], str]) -> str:
    """Code spans replaced by ``keep(content)``, as ``(`+)(.+?)\\1`` would find them.

    That pattern tries the longest backtick run first, then shorter ones; a run of ``n``
    closes on the next ``n`` backticks, which may lie inside a longer run (or inside its
    own). From the longest run that follows each run, the size and end of the span at a
    position are known without a search, so a line of backticks takes linear time.
    """
    if "\n" in text:
        return "\n".join(_code_spans(line, keep) for line in text.split("\n"))
    runs = [m.span() for m in _TICKS_RE.finditer(text)]
    longest_after = [0] * len(runs)
    longest = 0
    for r in range(len(runs) - 1, -1, -1):
        longest_after[r] = longest
        longest = max(longest, runs[r][1] - runs[r][0])
    out: list[str] = []
    pos = r = 0
    while r < len(runs):
        start, end = runs[r]
        start = max(start, pos)
        if start >= end:
            r += 1
            continue
        ticks = end - start
        # sizes up to (ticks - 1) // 2 close inside this run; others need a later run as long
        size = min(ticks, max((ticks - 1) // 2, longest_after[r]))
        if size == 0:
            break  # one or two backticks and none after them: nothing more can match
        if 2 * size + 1 <= ticks:
            close = start + size + 1
        else:
            r += 1
            while runs[r][1] - runs[r][0] < size:
                r += 1
            close = runs[r][0]
        out += (text[pos:start], keep(text[start + size : close]))
        pos = close + size
    out.append(text[pos:])
    return "".join(out)


def _bracketed(text: str, opener: str, min_body: int, mid: str, close: str) -> str:
    """``opener([^\\]]{min_body,})\\]`` + ``mid`` + ``[^close]*close`` replaced by the body.

    The body ends at the first ``]`` after the opener, so every opener before one ``]``
    shares it: both searches remember their last answer and never scan a stretch twice.
    """
    out: list[str] = []
    pos = 0
    bracket = after = -1  # the last "]" and ``close`` found (valid while ahead of the search)
    start = text.find(opener)
    while start >= 0:
        body = start + len(opener)
        if bracket < body and (bracket := text.find("]", body)) < 0:
            break
        if bracket - body >= min_body and text.startswith(mid, bracket + 1):
            if after < bracket + 2 and (after := text.find(close, bracket + 2)) < 0:
                break
            out += (text[pos:start], text[body:bracket])
            pos = after + 1
            start = text.find(opener, pos)
        else:
            start = text.find(opener, start + 1)
    out.append(text[pos:])
    return "".join(out)


def _autolinks(text: str) -> str:
    """``<((?:https?|ftp|mailto):[^>\\s]+)>`` replaced by the address."""
    out: list[str] = []
    pos = 0
    stop = -1  # the last ">" or space found
    while (opened := _AUTOLINK_RE.search(text, pos)) is not None:
        body = opened.end()
        if stop < body:
            found = _AUTOLINK_END_RE.search(text, body)
            if found is None:
                break
            stop = found.start()
        if stop > body and text[stop] == ">":
            out += (text[pos : opened.start()], text[opened.start() + 1 : stop])
            pos = stop + 1
        else:
            out.append(text[pos : opened.end()])
            pos = opened.end()
    out.append(text[pos:])
    return "".join(out)
