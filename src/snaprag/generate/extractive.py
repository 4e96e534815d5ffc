"""Extractive answers: the passages of the top chunks that answer the question, best first.

Each hit is cut into whole sentences (:mod:`.sentences`, which undoes line wrapping). The
quotable passages are single sentences and list items, each item together with the
sentence or heading that introduces it, and whole lists with their introduction. Each
passage is scored by

* the share of the question's terms it contains, each term weighted by how rare it is
  among the retrieved passages (a term every passage has tells them apart no better than
  none), with terms found only in its heading path counting half;
* the embedding model's cosine to the question (one batched call; vectors of passages
  seen before come from a small cache);
* a small prior for higher-ranked hits.

The answer opens with the best passage and adds the next best while they fit a length
budget, each followed by its citation (``[manual.pdf p.3]``; the citation also carries the
hit's heading path, which the command line and the API show with it). When the best passage
covers too little of the question the answer abstains (:mod:`.abstain`): the no-answer
text in the question's language and no citations.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from ..embed.base import Embedder
from ..index.tokenize import tokenize_many
from ..types import Answer, AnswerEvent, Citation, Hit, StageTimings
from .abstain import AbstentionRule, Evidence
from .prompts import template_for
from .sentences import Sentence, chunk_sentences

NO_ANSWER = "No answer found in the indexed documents."
#: heading path separator in ``Hit.section``
_SECTION_SEPARATOR = " > "
#: weights of the score's parts: term coverage, cosine, hit-rank prior (tuned on dev data)
LEXICAL_WEIGHT = 1.0
COSINE_WEIGHT = 0.3
RANK_PRIOR = 0.05
#: share of a term's weight when it is found only in the heading path
SECTION_SHARE = 0.5
#: added for a passage with a number when the question asks for one (how long, 몇 ...)
NUMBER_BONUS = 0.1
#: a further passage is quoted only if it covers this share of what the best one covers
FOLLOW_SHARE = 0.5
#: questions that ask for a number, a date or a duration
_NUMBER_QUESTION = re.compile(
    r"\b(?:how (?:long|many|much|old|often|far|big|heavy|tall|high|fast)|when|what year|"
    r"what date|what time)\b|몇|얼마|언제|며칠|연도|년도",
    re.IGNORECASE,
)
_DIGIT = re.compile(r"\d")
#: passages considered after the best one
_CANDIDATES = 64
#: passage vectors kept between answers
_VECTOR_CACHE_SIZE = 4096


@dataclass(frozen=True, slots=True)
class Passage:
    """A quotable piece of one hit: sentences or list items, and the text it is judged by."""

    hit: int
    #: indexes into the hit's sentences, quoted in this order
    parts: tuple[int, ...]
    #: what is scored: the parts, with the sentence or heading that introduces an item
    judged: str
    #: what is quoted: the parts' text
    quoted: str
    #: the introduction of an item (a sentence or heading), empty for other passages
    lead: str = ""


class ExtractiveAnswerer:
    """Answers from hits with whole sentences of their text (see the module docstring)."""

    def __init__(
        self,
        embedder: Embedder,
        max_sentences: int = 3,
        max_chunks: int = 5,
        min_score: float = 0.25,
        max_chars: int = 300,
        rule: AbstentionRule | None = None,
    ) -> None:
        self.embedder = embedder
        self.max_sentences = max_sentences
        self.max_chunks = max_chunks
        #: kept for settings files that name it; abstention is decided by ``rule``
        self.min_score = min_score
        self.max_chars = max_chars
        self.rule = rule if rule is not None else AbstentionRule()
        self._vectors: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def answer(self, question: str, hits: Sequence[Hit]) -> Answer:
        hits = list(hits)
        top = hits[: self.max_chunks]
        pieces = [_pieces(h) for h in top]
        passages = [p for i, ps in enumerate(pieces) for p in _passages(i, ps)]
        if not passages:
            return self._abstain(question, hits, Evidence(0.0, 0.0, 0))
        # bigram mode for Korean: no analyser to load just to compare words
        qterms = set(tokenize_many([question], korean="bigram")[0])
        judged = tokenize_many([p.judged for p in passages], korean="bigram")
        # each hit's heading path and heading lines, tokenized once per hit
        headings = [set(t) for t in tokenize_many(
            [_heading_text(h, ps) for h, ps in zip(top, pieces, strict=True)], korean="bigram"
        )]  # fmt: skip
        sections = [headings[p.hit] for p in passages]
        coverage = _coverage(qterms, [set(t) for t in judged], sections)
        cosine = self._cosines(question, [p.judged for p in passages])
        prior = np.array([RANK_PRIOR / (1 + p.hit) for p in passages])
        score = LEXICAL_WEIGHT * coverage + COSINE_WEIGHT * cosine + prior
        if _NUMBER_QUESTION.search(question):
            score += NUMBER_BONUS * np.array([bool(_DIGIT.search(p.quoted)) for p in passages])
        best = int(np.argmax(score))
        best = self._whole_list(passages, coverage, qterms, best)
        evidence = Evidence(float(coverage.max()), float(cosine.max()), len(qterms))
        if self.rule.abstains(evidence):
            return self._abstain(question, hits, evidence)
        following = _following(top, passages, best)
        if following is not None and coverage[following] > 0:
            # the sentence right after the best one carries on with it ("The warranty
            # depends on the part." / "Frame and motors: 7 years, ..."): it comes next
            score = score.copy()
            score[following] = score.max() + 1.0
        chosen = self._choose(passages, score, coverage, best)
        answer = _compose(question, hits, [passages[j] for j in chosen])
        answer.metrics.update(_evidence_metrics(evidence))
        return answer

    def _choose(
        self, passages: list[Passage], score: np.ndarray, coverage: np.ndarray, best: int
    ) -> list[int]:
        """The best passage, then the next best that say enough of the question, add
        something and fit the budget."""
        chosen = [best]
        quoted = {(passages[best].hit, k) for k in passages[best].parts}
        length = len(passages[best].quoted)
        keys = [_key(passages[best].quoted)]
        # the best few dozen are enough to fill the budget: a chunk of thousands of tiny
        # "sentences" must not make each be compared with every quoted one
        for j in np.argsort(-score, kind="stable")[:_CANDIDATES]:
            if len(chosen) >= self.max_sentences:
                break
            p = passages[int(j)]
            parts = {(p.hit, k) for k in p.parts}
            close = score[j] > score[best]  # the sentence that follows the best one
            if parts & quoted or (coverage[j] < FOLLOW_SHARE * coverage[best] and not close):
                continue  # already quoted (a list's item, say), or too far from the question
            if length + len(p.quoted) > self.max_chars:
                continue
            key = _key(p.quoted)
            if any(key in k or k in key for k in keys):
                continue  # the same sentence in another hit (overlap, a repeated paragraph)
            chosen.append(int(j))
            keys.append(key)
            quoted |= parts
            length += len(p.quoted)
        return chosen

    @staticmethod
    def _whole_list(
        passages: list[Passage], coverage: np.ndarray, qterms: set[str], best: int
    ) -> int:
        """The whole list instead of its best item when the item says nothing of the
        question beyond the list's introduction ("How do I make a claim?" over the
        numbered steps under "How to make a warranty claim")."""
        p = passages[best]
        if not p.lead or len(p.parts) > 2:
            return best
        lead = _coverage(qterms, [set(tokenize_many([p.lead], korean="bigram")[0])], [set()])
        if coverage[best] > lead[0] + 1e-9:
            return best  # the item itself answers (a frame's warranty among the parts')
        wider = [
            j
            for j, q in enumerate(passages)
            if q.hit == p.hit and q.lead == p.lead and set(p.parts) < set(q.parts)
        ]
        return max(wider, key=lambda j: len(passages[j].parts), default=best)

    def _cosines(self, question: str, texts: list[str]) -> np.ndarray:
        qvec = self.embedder.embed_queries([question])[0]
        with self._lock:
            missing = list(dict.fromkeys(t for t in texts if t not in self._vectors))
        if missing:
            vectors = self.embedder.embed_passages(missing)
            with self._lock:
                for t, v in zip(missing, vectors, strict=True):
                    self._vectors[t] = v
                while len(self._vectors) > _VECTOR_CACHE_SIZE:
                    self._vectors.popitem(last=False)
        with self._lock:
            found = {t: self._vectors.get(t) for t in texts}
        stale = [t for t, v in found.items() if v is None]  # evicted meanwhile by another thread
        if stale:
            found.update(zip(stale, self.embedder.embed_passages(stale), strict=True))
        matrix = np.stack([found[t] for t in texts])
        return matrix @ qvec

    def _abstain(self, question: str, hits: list[Hit], evidence: Evidence) -> Answer:
        answer = Answer(question, template_for(question).no_answer, [], hits)
        answer.metrics.update(_evidence_metrics(evidence))
        answer.metrics["abstained"] = 1.0
        return answer


def _following(top: list[Hit], passages: list[Passage], best: int) -> int | None:
    """The passage that directly follows passage ``best`` in its document: the next
    sentence of the same hit, or the first of the hit holding the document's next chunk."""
    p = passages[best]
    after = [j for j, q in enumerate(passages) if q.hit == p.hit and q.parts[0] > p.parts[-1]]
    if after:
        nearest = min(after, key=lambda j: passages[j].parts[0])
        return nearest if len(passages[nearest].parts) == 1 else None
    if any(q.hit == p.hit and q.parts[-1] > p.parts[-1] for q in passages):
        return None
    doc, _, n = top[p.hit].id.rpartition("#")
    if not n.isdigit():
        return None
    following = f"{doc}#{int(n) + 1}"
    for j, q in enumerate(passages):
        if top[q.hit].id == following and len(q.parts) == 1:
            return j  # the first passage of the next chunk
    return None


def _key(text: str) -> str:
    return " ".join(text.casefold().split())


def _evidence_metrics(evidence: Evidence) -> dict[str, float]:
    return {"coverage": round(evidence.coverage, 4), "similarity": round(evidence.similarity, 4)}


def _pieces(hit: Hit) -> list[Sentence]:
    """The hit's sentences, with its own heading lines marked as headings (a numbered
    heading such as "2. How to make a warranty claim" reads like a list item)."""
    headings = {h.strip().casefold() for h in hit.section.split(_SECTION_SEPARATOR) if h}
    return [
        Sentence(s.text, "heading", s.block) if s.text.casefold() in headings else s
        for s in chunk_sentences(hit.text)
    ]


def _passages(hit: int, pieces: list[Sentence]) -> list[Passage]:
    """Quotable passages of one hit: sentences, items (with their introduction) and lists."""
    out: list[Passage] = []
    k = 0
    while k < len(pieces):
        s = pieces[k]
        if s.kind in ("item", "row"):
            intro = k - 1 if k and pieces[k - 1].kind in ("sentence", "heading") else None
            end = k
            while end < len(pieces) and pieces[end].kind == s.kind:
                end += 1
            items = range(k, end)
            lead = pieces[intro].text + " " if intro is not None else ""
            quoted_intro = (
                (intro,) if intro is not None and pieces[intro].kind == "sentence" else ()
            )
            for i in items:
                out.append(_passage(hit, pieces, (*quoted_intro, i), lead))
            if len(items) > 1 and s.kind == "item":  # a whole list; a whole table is too long
                out.append(_passage(hit, pieces, (*quoted_intro, *items), lead))
            k = end
            continue
        introduces = (
            s.text.endswith(":") and k + 1 < len(pieces) and pieces[k + 1].kind in ("item", "row")
        )
        if s.kind == "sentence" and not introduces:
            out.append(Passage(hit, (k,), s.text, s.text))
        k += 1
    return out


def _passage(hit: int, pieces: list[Sentence], parts: tuple[int, ...], lead: str) -> Passage:
    items = " ".join(pieces[k].text for k in parts if pieces[k].kind in ("item", "row"))
    return Passage(hit, parts, lead + items, " ".join(pieces[k].text for k in parts), lead)


def _heading_text(hit: Hit, pieces: list[Sentence]) -> str:
    return " ".join([hit.section, *(s.text for s in pieces if s.kind == "heading")])


def _coverage(question: set[str], passages: list[set[str]], sections: list[set[str]]) -> np.ndarray:
    """Rarity-weighted share of the question's terms in each passage (heading terms half)."""
    if not question:
        return np.zeros(len(passages))
    df = Counter(t for terms in {frozenset(p) for p in passages} for t in terms)
    n = len({frozenset(p) for p in passages})
    weight = {t: math.log(1 + n / (1 + df[t])) for t in question}
    total = sum(weight.values())
    out = np.empty(len(passages))
    for j, (terms, heading) in enumerate(zip(passages, sections, strict=True)):
        found = sum(w for t, w in weight.items() if t in terms)
        found += SECTION_SHARE * sum(
            w for t, w in weight.items() if t in heading and t not in terms
        )
        out[j] = found / total
    return out


def _compose(question: str, hits: list[Hit], chosen: list[Passage]) -> Answer:
    citations: list[Citation] = []
    by_hit: dict[int, Citation] = {}
    parts = []
    for p in chosen:
        if p.hit not in by_hit:
            h = hits[p.hit]
            by_hit[p.hit] = Citation(len(by_hit) + 1, h.source, h.page, h.doc_id, h.id, h.section)
            citations.append(by_hit[p.hit])
        parts.append(f"{p.quoted} {by_hit[p.hit].label}")
    answer = Answer(question, " ".join(parts), citations, hits)
    answer.metrics["quoted_chars"] = float(len(" ".join(p.quoted for p in chosen)))
    return answer


EXTRACTIVE_VERSION = "3"


class ExtractiveGenerator:
    """The extractive answerer behind the generator interface (no LLM, no prompt).

    The embedder is fetched when the first answer is made, so that building the engine's
    generator loads nothing.
    """

    name = "extractive"

    def __init__(
        self,
        embedder: Callable[[], Embedder],
        model_name: Callable[[], str],
        max_sentences: int = 3,
        max_chunks: int = 5,
        min_score: float = 0.25,
    ) -> None:
        self._embedder = embedder
        self._model_name = model_name
        self._settings = (max_sentences, max_chunks, min_score)
        self._answerer: ExtractiveAnswerer | None = None
        self._lock = threading.Lock()
        self.requests = 0

    @property
    def fingerprint(self) -> str:
        sentences, chunks, floor = self._settings
        return (
            f"extractive:{self._model_name()}|v{EXTRACTIVE_VERSION},sentences={sentences},"
            f"chunks={chunks},min_score={floor}"
        )

    def load(self) -> None:
        """Nothing beyond the embedder, which the retriever loads anyway."""

    def answer(
        self, question: str, hits: Sequence[Hit], timings: StageTimings, started: float
    ) -> Iterator[AnswerEvent]:
        with self._lock:
            if self._answerer is None:
                rule = AbstentionRule.for_model(self._model_name())
                self._answerer = ExtractiveAnswerer(self._embedder(), *self._settings, rule=rule)
            self.requests += 1
        t = time.perf_counter()
        answer = self._answerer.answer(question, hits)
        answer.timings = timings
        timings.add("answer", (time.perf_counter() - t) * 1000)
        timings.stages["total"] = (time.perf_counter() - started) * 1000
        yield AnswerEvent("token", text=answer.text)
        yield AnswerEvent("done", text=answer.text, answer=answer)

    def close(self) -> None:
        """Nothing to release."""
