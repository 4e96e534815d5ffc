"""A labelled set of query variants, built from real queries, for the semantic cache.

For every real query, variants that ask the same thing (``same=True``: other casing and
punctuation, question framing such as "Is it true that ...") and variants that ask
something else (``same=False``: a negation, a changed number, a content word swapped for
one of another query, a content word dropped, two content words trading places). A
semantic cache should hit on the first kind and never on the second.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from ..index.tokenize import has_hangul

_AUX = re.compile(r"\b(is|are|was|were|does|do|did|can|could|has|have|had|will|may|might)\b")
_NUMBER = re.compile(r"\d+")
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9-]{3,}")
_STOP = frozenset(
    {
        "that", "with", "from", "have", "this", "were", "been", "their", "which", "there",
        "about", "into", "than", "them", "they", "also", "such", "when", "what", "does",
        "more", "most", "some", "only", "other", "these", "those", "after", "before", "over",
        "under", "between", "during", "through", "associated", "increased", "decreased",
    }
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Variant:
    original: str
    text: str
    same: bool
    kind: str


def _content_words(text: str) -> list[str]:
    return [w for w in _WORD.findall(text) if w.lower() not in _STOP]


def english_variants(query: str, others: list[str], rng: random.Random) -> list[Variant]:
    q = query.strip().rstrip(".?!")
    lower = q[:1].lower() + q[1:]
    out = [
        Variant(query, q.upper() + " ?", True, "case+punctuation"),
        Variant(query, f"Is it true that {lower}?", True, "framing"),
        Variant(query, f"Please tell me whether {lower}.", True, "framing"),
    ]
    m = _AUX.search(q)
    negated = q[: m.end()] + " not" + q[m.end() :] if m else f"It is not true that {lower}"
    out.append(Variant(query, negated, False, "negation"))
    n = _NUMBER.search(q)
    if n:
        changed = q[: n.start()] + str(int(n.group()) + 1) + q[n.end() :]
        out.append(Variant(query, changed, False, "number"))
    words = _content_words(q)
    if words:
        target = max(words, key=len)
        pool = [w for o in others for w in _content_words(o) if w.lower() not in q.lower()]
        if pool:
            swapped = q.replace(target, rng.choice(pool), 1)
            out.append(Variant(query, swapped, False, "word swapped"))
        dropped = " ".join(q.replace(target, "", 1).split())
        if dropped != q and _content_words(dropped):
            out.append(Variant(query, dropped, False, "word dropped"))
        first, last = words[0], words[-1]
        if first.lower() != last.lower() and q.count(first) == q.count(last) == 1:
            swapped = q.replace(first, "\0").replace(last, first).replace("\0", last)
            out.append(Variant(query, swapped, False, "word order"))
    return out


def korean_variants(query: str, others: list[str], rng: random.Random) -> list[Variant]:
    q = query.strip().rstrip("?？.")
    out = [
        Variant(query, q + " ?", True, "punctuation+spacing"),
        Variant(query, f"질문: {q}?", True, "framing"),
        Variant(query, f"{q} 알려주세요", True, "framing"),
    ]
    out.append(Variant(query, f"{q} 아닌 것은?", False, "negation"))
    n = _NUMBER.search(q)
    if n:
        changed = q[: n.start()] + str(int(n.group()) + 1) + q[n.end() :]
        out.append(Variant(query, changed + "?", False, "number"))
    words = q.split()
    if len(words) >= 3:
        target = max(range(len(words) - 1), key=lambda i: len(words[i]))
        pool = [w for o in others for w in o.split()[:-1] if len(w) >= 2 and w not in words]
        if pool:
            swapped = [*words]
            swapped[target] = rng.choice(pool)
            out.append(Variant(query, " ".join(swapped) + "?", False, "word swapped"))
        dropped = words[:target] + words[target + 1 :]
        out.append(Variant(query, " ".join(dropped) + "?", False, "word dropped"))
        if words[0] != words[1]:
            order = [words[1], words[0], *words[2:]]
            out.append(Variant(query, " ".join(order) + "?", False, "word order"))
    return out


def build_variants(queries: list[str], seed: int = 13) -> list[Variant]:
    """Variants of every query (English or Korean rules chosen by script)."""
    rng = random.Random(seed)
    out: list[Variant] = []
    for i, q in enumerate(queries):
        others = queries[max(0, i - 20) : i] + queries[i + 1 : i + 21]
        make = korean_variants if has_hangul(q) else english_variants
        out.extend(make(q, others, rng))
    return out
