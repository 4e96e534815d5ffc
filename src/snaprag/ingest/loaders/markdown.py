"""Markdown files, reduced to readable plain text."""

from __future__ import annotations

import html
import re
from pathlib import Path

from ...types import Document, Section
from ._text import clean_title, decode_text, make_document, normalize_text, require_text

_FENCE_RE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_FRONT_MATTER_RE = re.compile(r"\A---[ \t]*\n(.*?)\n(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.DOTALL)
_FRONT_TITLE_RE = re.compile(r"^title:\s*(.+?)\s*$", re.MULTILINE)
_ATX_RE = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_SETEXT_RE = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_RULE_RE = re.compile(r"^ {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$")
_TABLE_SEP_RE = re.compile(r"^ {0,3}\|?[ \t]*:?-+:?[ \t]*(\|[ \t]*:?-+:?[ \t]*)*\|?[ \t]*$")
_REF_DEF_RE = re.compile(r"^ {0,3}\[[^\]]+\]:\s+\S+.*$")
_QUOTE_RE = re.compile(r"^ {0,3}(?:>[ \t]?)+")
_BULLET_RE = re.compile(r"^(\s*)[*+-][ \t]+(?:\[[ xX]\][ \t]+)?")
_IMAGE_RE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")
_LINK_RE = re.compile(r"\[([^\]]+)\]\([^)]*\)")
_REF_LINK_RE = re.compile(r"\[([^\]]+)\]\[[^\]]*\]")
_AUTOLINK_RE = re.compile(r"<((?:https?|ftp|mailto):[^>\s]+)>")
_HTML_COMMENT_RE = re.compile(r"<!--.*?-->", re.DOTALL)
_HTML_TAG_RE = re.compile(r"</?[A-Za-z][A-Za-z0-9-]*(?:\s[^<>]*)?/?>")
_CODE_SPAN_RE = re.compile(r"(`+)(.+?)\1")
_STRONG_RE = re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1")
_EM_STAR_RE = re.compile(r"(?<![\w*])\*(?=\S)(.+?)(?<=\S)\*(?![\w*])")
_EM_UNDER_RE = re.compile(r"(?<![\w_])_(?=\S)(.+?)(?<=\S)_(?![\w_])")
_STRIKE_RE = re.compile(r"~~(?=\S)(.+?)(?<=\S)~~")
_ESCAPE_RE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!|>~<])")


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
        title, text = markdown_to_text(source)
        text = require_text(normalize_text(text))
        return [make_document(path, self.type, title or path.stem, [Section(text)])]


def markdown_to_text(source: str) -> tuple[str, str]:
    """Return ``(title, text)`` for a Markdown document; ``title`` may be empty."""
    title = ""
    front = _FRONT_MATTER_RE.match(source)
    if front:
        found = _FRONT_TITLE_RE.search(front.group(1))
        if found:
            title = clean_title(found.group(1).strip("'\""))
        source = source[front.end() :]
    source = _HTML_COMMENT_RE.sub("", source)

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
        heading = _ATX_RE.match(line)
        if heading:
            text = _inline(heading.group(2) or "")
            if not title and len(heading.group(1)) == 1 and text:
                title = clean_title(text)
            out.extend(["", text, ""])
            continue
        if _SETEXT_RE.match(line) and out and out[-1].strip():
            # "Title\n=====": the line above is the heading text, already emitted.
            if not title and line.strip().startswith("="):
                title = clean_title(out[-1])
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
    return title, "\n".join(out)


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

    def keep(match: re.Match[str]) -> str:
        spans.append(match.group(2).strip())
        return f"\x00{len(spans) - 1}\x00"

    text = _CODE_SPAN_RE.sub(keep, text)
    text = _IMAGE_RE.sub(r"\1", text)
    text = _LINK_RE.sub(r"\1", text)
    text = _REF_LINK_RE.sub(r"\1", text)
    text = _AUTOLINK_RE.sub(r"\1", text)
    text = _HTML_TAG_RE.sub("", text)
    text = _STRONG_RE.sub(r"\2", text)
    text = _EM_STAR_RE.sub(r"\1", text)
    text = _EM_UNDER_RE.sub(r"\1", text)
    text = _STRIKE_RE.sub(r"\1", text)
    text = _ESCAPE_RE.sub(r"\1", text)
    text = html.unescape(text)
    return re.sub(r"\x00(\d+)\x00", lambda m: spans[int(m.group(1))], text)
