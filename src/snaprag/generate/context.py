"""The context builder: the best chunks, numbered, within a token budget.

Hits arrive ordered by score. The builder

1. drops duplicates: the same chunk twice, or a chunk whose text (whitespace and case
   folded) equals or lies inside a better-scored one (overlapping chunks, the same file
   indexed twice);
2. takes chunks in score order while they fit the budget, measured with the generator's
   own tokenizer; a chunk that does not fit whole is trimmed to the sentences that do
   (sentence boundaries from the chunker's splitter), and skipped if not even its first
   sentence fits;
3. numbers the chosen chunks ``[1]``, ``[2]``... in that order, and renders each as a block
   headed by its number, file name and page.

The rendered context is measured once more as a whole, and trimmed further if joining the
blocks made it larger than the sum of their parts, so the budget holds exactly.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..ingest.chunking import split_sentences
from ..types import Hit

#: counts the tokens of each text, in one call (the generator's tokenizer)
CountTokens = Callable[[Sequence[str]], list[int]]

SEPARATOR = "\n\n"
#: up to this many sentences, a chunk's prefixes are measured in one batched call
_BATCHED_PREFIXES = 64
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class ContextSource:
    """One numbered block of the context."""

    n: int
    hit: Hit
    text: str  # the chunk text as given to the model (trimmed if ``trimmed``)
    tokens: int  # tokens of the whole block (header included)
    trimmed: bool


@dataclass(frozen=True, slots=True)
class BuiltContext:
    sources: tuple[ContextSource, ...]
    text: str
    tokens: int  # of ``text``, measured as a whole
    budget: int
    duplicates: int  # hits dropped as duplicates
    left_out: int  # hits that did not fit

    def source(self, n: int) -> ContextSource | None:
        return self.sources[n - 1] if 1 <= n <= len(self.sources) else None


def source_label(hit: Hit, page_format: str = "p. {page}") -> str:
    """``manual.pdf, p. 2`` (file name and page) or ``guide.md``."""
    name = hit.source.rsplit("/", 1)[-1]
    if hit.page is None:
        return name
    return f"{name}, {page_format.format(page=hit.page)}"


def render_block(n: int, hit: Hit, text: str, page_format: str = "p. {page}") -> str:
    return f"[{n}] {source_label(hit, page_format)}\n{text.strip()}"


def dedupe(hits: Sequence[Hit]) -> tuple[list[Hit], int]:
    """Hits in score order without repeats; returns them and how many were dropped."""
    ordered = sorted(hits, key=lambda h: -h.score)  # stable: ties keep retrieval order
    kept: list[Hit] = []
    keys: list[str] = []
    seen_ids: set[str] = set()
    for hit in ordered:
        key = _SPACE.sub(" ", hit.text).strip().casefold()
        if not key or hit.id in seen_ids or any(key in other for other in keys):
            continue
        # (a lower-scored chunk that contains a kept one is kept: it adds text)
        seen_ids.add(hit.id)
        keys.append(key)
        kept.append(hit)
    return kept, len(hits) - len(kept)


def _key(text: str) -> str:
    return _SPACE.sub(" ", text).strip().casefold()


def _unique(hits: Sequence[Hit]) -> tuple[list[Hit], int]:
    """Hits in score order without repeated ids or identical texts."""
    kept: list[Hit] = []
    seen: set[str] = set()
    for hit in sorted(hits, key=lambda h: -h.score):  # stable: ties keep retrieval order
        key = _key(hit.text)
        if key and hit.id not in seen and key not in seen:
            seen.update((hit.id, key))
            kept.append(hit)
    return kept, len(hits) - len(kept)


def build_context(
    hits: Sequence[Hit],
    count_tokens: CountTokens,
    budget: int,
    page_format: str = "p. {page}",
) -> BuiltContext:
    """Number and render the best ``hits`` within ``budget`` tokens (see module docs)."""
    # exact repeats go first; a chunk contained in a better one is dropped only if the
    # text of it that made it into the context (perhaps trimmed) really contains it
    candidates, duplicates = _unique(hits)
    if budget <= 0 or not candidates:
        return BuiltContext((), "", 0, max(budget, 0), duplicates, len(candidates))
    sep = count_tokens([SEPARATOR])[0]
    # one batched count for every candidate block, numbered as if all were taken; the
    # number's width barely matters, and the final measurement corrects it
    whole = count_tokens(
        [render_block(i + 1, h, h.text, page_format) for i, h in enumerate(candidates)]
    )
    chosen: list[ContextSource] = []
    included: list[str] = []
    used = skipped = 0
    for hit, tokens in zip(candidates, whole, strict=True):
        key = _key(hit.text)
        if any(key in text for text in included):
            duplicates += 1
            skipped += 1
            continue
        room = budget - used - (sep if chosen else 0)
        n = len(chosen) + 1
        if tokens <= room:
            chosen.append(ContextSource(n, hit, hit.text.strip(), tokens, False))
        else:
            part = _trim(hit, n, room, count_tokens, page_format, first=not chosen)
            if part is None:
                continue
            chosen.append(part)
        included.append(_key(chosen[-1].text))
        used += chosen[-1].tokens + (sep if n > 1 else 0)
    while True:
        text = SEPARATOR.join(render_block(s.n, s.hit, s.text, page_format) for s in chosen)
        total = count_tokens([text])[0] if text else 0
        if total <= budget or not chosen:
            break
        # joining added tokens: shorten the last block by a sentence, or drop it
        last = chosen.pop()
        room = last.tokens - (total - budget)
        part = _trim(last.hit, last.n, room, count_tokens, page_format, text=last.text)
        if part is not None and part.tokens < last.tokens:
            chosen.append(part)
    return BuiltContext(
        tuple(chosen), text, total, budget, duplicates, len(candidates) - len(chosen) - skipped
    )


def _trim(
    hit: Hit,
    n: int,
    room: int,
    count_tokens: CountTokens,
    page_format: str,
    first: bool = False,
    text: str | None = None,
) -> ContextSource | None:
    """The longest run of whole leading sentences of the chunk that fits ``room`` tokens.

    When nothing else is in the context yet (``first``) and not even one sentence fits, the
    first sentence is cut at a word boundary instead, so that a question never goes to the
    model without its best source.
    """
    if room <= 0:
        return None
    body = (hit.text if text is None else text).strip()
    ends = [e for _, e in split_sentences(body)]
    if ends and ends[-1] == len(body):
        ends.pop()  # the whole text did not fit (or is being shortened): not a candidate
    if 0 < len(ends) <= _BATCHED_PREFIXES:
        prefixes = [body[:e].rstrip() for e in ends]
        counts = count_tokens([render_block(n, hit, p, page_format) for p in prefixes])
        for prefix, tokens in zip(reversed(prefixes), reversed(counts), strict=True):
            if tokens <= room:
                return ContextSource(n, hit, prefix, tokens, True)
    elif ends:
        # many sentences: every prefix would be text quadratic in the chunk's length, so
        # binary search (counts grow with length) measures only a logarithmic few
        lo, hi, fit = 0, len(ends) - 1, None
        while lo <= hi:
            mid = (lo + hi) // 2
            prefix = body[: ends[mid]].rstrip()
            tokens = count_tokens([render_block(n, hit, prefix, page_format)])[0]
            if tokens <= room:
                fit, lo = ContextSource(n, hit, prefix, tokens, True), mid + 1
            else:
                hi = mid - 1
        if fit is not None:
            return fit
    if not first:
        return None
    first_end = ends[0] if ends else len(body)
    words = [m.start() for m in re.finditer(r"\s+", body[:first_end])]
    if not words:  # no spaces (Chinese, Japanese): cut between characters
        words = list(range(1, first_end))
    lo, hi, best = 0, len(words) - 1, None
    while lo <= hi:  # binary search over word boundaries: counts grow with length
        mid = (lo + hi) // 2
        cut = body[: words[mid]].rstrip() + " …"
        tokens = count_tokens([render_block(n, hit, cut, page_format)])[0]
        if tokens <= room:
            best, lo = ContextSource(n, hit, cut, tokens, True), mid + 1
        else:
            hi = mid - 1
    return best
