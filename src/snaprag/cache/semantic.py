"""Semantic cache lookup: reuse the entry of the nearest cached query, but only when it
asks the same thing.

Embedding similarity alone gives false hits: "Is aspirin effective" and "Is aspirin not
effective", "in 2019" and "in 2020", "flights from Seoul to Busan" and "... from Busan to
Seoul" embed almost identically. A candidate above the cosine threshold is therefore
accepted only when, after stemming and stop-word removal, the two queries have the same
content words in the same order (inflection and question framing such as "is it true
that" may differ), the same numbers (digits or words), and the same negations, comparison
words, question words, quantifiers, modals, pronouns and single letters.
"""

from __future__ import annotations

import logging
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..index.tokenize import tokenize

if TYPE_CHECKING:
    from .disk import CacheDB

log = logging.getLogger(__name__)

_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
# English negations, and the Korean negative adverbs, auxiliaries and words of absence
_NEGATION_EN = re.compile(
    r"\b(?:not|no|never|none|nor|neither|nobody|nothing|without|cannot|except|"
    r"unless|lack|lacks|lacking|absent|fails?|\w+n't)\b"
)
# stop words that still change what is asked (search drops them, the cache must not)
_POLARITY_EN = re.compile(
    r"\b(?:more|most|less|least|few|fewer|before|after|above|below|over|under|up|down|"
    r"against|only|same|off|out|between|during|than|first|last)\b"
)
# stop words that decide what is asked: question words, quantifiers, modals, pronouns
# ("me" and "it" are left out: "tell me ...", "is it true that ..." only frame a question)
_FUNCTION_EN = re.compile(
    r"\b(?:what|when|where|who|whom|whose|why|how|which|all|any|some|each|every|both|"
    r"either|many|much|can|could|should|would|must|may|might|will|shall|i|you|your|he|him|"
    r"his|she|her|its|we|us|our|they|them|their|[b-hj-z])\b"
)
_NUMBER_WORD = re.compile(
    r"\b(?:zero|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|"
    r"fourteen|fifteen|sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|"
    r"sixty|seventy|eighty|ninety|hundred|thousand|million|billion|once|twice|half|"
    r"first|second|third|fourth|fifth|tenth|dozen|single|double|triple)\b"
)
_QUESTION_KO = re.compile(r"언제|어디|누가|누구|무엇|뭐|왜|어떻게|어느|몇|얼마|모든|일부")
_NEGATION_KO = re.compile(r"(?:^|\s)(?:안|못)\s|않|없|아니|아닌|말고|제외|못하|불가|미포함")
# words that frame a question without changing what is asked
FILLER = frozenset(
    {
        "tell", "explain", "describ", "pleas", "kind", "know", "wonder", "want", "like",
        "question", "true", "claim", "whether", "fact", "correct", "right",
        "알려", "알려주", "알리", "설명", "질문", "궁금", "말해", "말하", "주",
    }
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class QueryFeatures:
    """What must agree between two queries for one to reuse the other's entry."""

    words: tuple[str, ...]  # content words in text order
    numbers: tuple[str, ...]  # digits and number words, sorted
    negations: tuple[str, ...]  # negations, comparison and function words, in order

    @classmethod
    def of(cls, normalized: str) -> QueryFeatures:
        words = tuple(
            t for t in tokenize(normalized, korean="morph") if t not in FILLER and not t.isdigit()
        )
        numbers = tuple(
            sorted(
                [n.replace(",", "") for n in _NUMBER.findall(normalized)]
                + _NUMBER_WORD.findall(normalized)
            )
        )
        patterns = (_NEGATION_EN, _POLARITY_EN, _FUNCTION_EN, _NEGATION_KO, _QUESTION_KO)
        markers = sorted(
            (m.start(), m.group(0).strip()) for pat in patterns for m in pat.finditer(normalized)
        )
        negations = tuple(word for _, word in markers)  # in text order
        return cls(words, numbers, negations)

    def agrees(self, other: QueryFeatures) -> bool:
        return (
            bool(self.words)
            and self.words == other.words
            and self.numbers == other.numbers
            and self.negations == other.negations
        )


class _Scope:
    """Entries of one scope: a matrix grown by doubling (amortized O(d) per add)."""

    def __init__(self, dim: int) -> None:
        self.matrix = np.zeros((64, dim), dtype=np.float32)
        self.n = 0
        self.keys: list[str] = []
        self.features: list[QueryFeatures] = []
        self.texts: dict[str, int] = {}

    @property
    def vectors(self) -> np.ndarray:
        return self.matrix[: self.n]

    def append(self, vector: np.ndarray, key: str, text: str, features: QueryFeatures) -> None:
        if self.n == len(self.matrix):
            grown = np.zeros((2 * len(self.matrix), self.matrix.shape[1]), dtype=np.float32)
            grown[: self.n] = self.matrix[: self.n]
            self.matrix = grown
        self.matrix[self.n] = vector
        self.n += 1
        self.keys.append(key)
        self.features.append(features)
        self.texts[text] = self.n - 1

    def drop_oldest(self, count: int) -> None:
        self.matrix[: self.n - count] = self.matrix[count : self.n]
        self.n -= count
        del self.keys[:count], self.features[:count]
        self.texts = {t: i - count for t, i in self.texts.items() if i >= count}


class SemanticCache:
    """Cached queries' vectors per scope (index generation + settings), in memory and, with
    ``db``, in the cache file too, so that a new process (a CLI call) finds them."""

    def __init__(
        self,
        threshold: float = 0.85,
        max_entries: int = 20_000,
        scopes: int = 4,
        guards: bool = True,
        db: CacheDB | None = None,
    ) -> None:
        self.db = db
        self._loaded: set[str] = set()
        self.threshold = threshold
        self.guards = guards  # False only to measure what the guards prevent
        self.max_entries = max_entries
        self.max_scopes = scopes
        self._scopes: OrderedDict[str, _Scope] = OrderedDict()
        self._lock = threading.Lock()
        self.rejected = 0  # candidates above the threshold that the guards turned down

    def add(self, scope: str, normalized: str, vector: np.ndarray, key: str) -> None:
        vector = np.asarray(vector, dtype=np.float32).reshape(1, -1)
        with self._lock:
            self._load(scope, vector.shape[1])
            if not self._add(scope, normalized, vector[0], key):
                return
        if self.db is not None:
            try:
                self.db.add_semantic(scope, normalized, key, vector[0], self.max_scopes * 2)
            except Exception as exc:  # locked or read-only: memory still has it
                log.warning("semantic cache entry not persisted: %s", exc)

    def _add(self, scope: str, normalized: str, vector: np.ndarray, key: str) -> bool:
        s = self._scopes.get(scope)
        if s is None:
            s = self._scopes[scope] = _Scope(vector.shape[0])
            while len(self._scopes) > self.max_scopes:
                dropped, _ = self._scopes.popitem(last=False)
                self._loaded.discard(dropped)
        self._scopes.move_to_end(scope)
        if normalized in s.texts:
            return False
        if s.n >= self.max_entries:  # drop the oldest half at once
            s.drop_oldest(s.n // 2)
        s.append(vector, key, normalized, QueryFeatures.of(normalized))
        return True

    def _load(self, scope: str, dim: int) -> None:
        """Entries of ``scope`` written by earlier processes (once per scope)."""
        if self.db is None or scope in self._loaded:
            return
        self._loaded.add(scope)
        try:
            rows = self.db.semantic_entries(scope, self.max_entries)
        except Exception as exc:
            log.warning("semantic cache entries not read: %s", exc)
            return
        for normalized, key, blob in rows:
            vector = np.frombuffer(blob, dtype="<f4")
            if vector.shape == (dim,) and np.isfinite(vector).all():
                self._add(scope, normalized, vector, key)

    def lookup(self, scope: str, normalized: str, vector: np.ndarray) -> tuple[str, float] | None:
        """``(key, cosine)`` of the cached query that may answer this one, or None."""
        with self._lock:
            self._load(scope, int(np.asarray(vector).size))
            s = self._scopes.get(scope)
            if s is None or not s.n:
                return None
            scores = s.vectors @ np.asarray(vector, dtype=np.float32).reshape(-1)
            top = min(8, len(scores))
            order = np.argpartition(-scores, top - 1)[:top]
            order = order[np.argsort(-scores[order])]
            features = None
            for i in order:
                if scores[i] < self.threshold:
                    break
                if not self.guards:
                    return s.keys[i], float(scores[i])
                features = features or QueryFeatures.of(normalized)
                if features.agrees(s.features[i]):
                    return s.keys[i], float(scores[i])
                self.rejected += 1
        return None

    def __len__(self) -> int:
        return sum(s.n for s in self._scopes.values())

    @property
    def bytes(self) -> int:
        return sum(s.matrix.nbytes for s in self._scopes.values())
