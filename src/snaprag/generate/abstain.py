"""When the extractive answer says that the documents do not answer the question.

Retrieval always returns its best hits, even for a question the documents know nothing
about ("What is the capital of France?" over typesetting manuals). The answerer then
measures how much of the question its best passage actually says, and abstains below a
floor. Two signals, both measured per question by :class:`~.extractive.ExtractiveAnswerer`:

* ``coverage``: the share of the question's terms, weighted by how rare each is among the
  retrieved passages, that the best passage contains (0 to 1). A question whose rare
  terms appear nowhere in the hits is about something else. It needs no model, so it
  means the same under every embedding model and in every language.
* ``similarity``: the embedding model's cosine between the question and the best hit.
  Cosines are on a different scale for each model, so a floor is only applied for the
  models it was measured on (:data:`SIMILARITY_FLOORS`); other models abstain on
  coverage alone.

The coverage floor was chosen on development data only: the first half (by article) of
the KorQuAD 1.0 dev questions as in-corpus questions and SciFact claims asked of the same
index as out-of-corpus ones, where 0.18-0.2 keeps in-corpus abstention near 3 % and
abstains on nearly every claim. The ``minilm`` similarity floor sits between the 1st
percentile of in-corpus question-to-hit cosines there (0.26) and the median of the
out-of-corpus ones (0.13); it only acts when coverage is middling. Other models, e5-small
included, have not been measured yet and abstain on coverage alone.
"""

from __future__ import annotations

from dataclasses import dataclass

#: below this coverage there is no answer, whatever the model
MIN_COVERAGE = 0.2
#: per embedding model (``Embedder.name``-like preset names): the least question-to-hit
#: cosine of a question that is answered, for questions whose coverage is not already high
SIMILARITY_FLOORS: dict[str, float] = {"minilm": 0.2}
#: coverage at or above which the similarity floor no longer applies
SURE_COVERAGE = 0.6


@dataclass(frozen=True, slots=True)
class Evidence:
    """What the retrieved passages say about one question (see the module docstring)."""

    coverage: float
    similarity: float
    #: searchable terms in the question
    terms: int


@dataclass(frozen=True, slots=True)
class AbstentionRule:
    """Abstain when the evidence is below the floors; ``similarity_floor`` None: no floor."""

    min_coverage: float = MIN_COVERAGE
    similarity_floor: float | None = None
    sure_coverage: float = SURE_COVERAGE

    @classmethod
    def for_model(cls, model: str) -> AbstentionRule:
        """The rule measured for ``model`` (a preset name; others get coverage only)."""
        return cls(similarity_floor=SIMILARITY_FLOORS.get(model))

    def abstains(self, evidence: Evidence) -> bool:
        if evidence.terms == 0:
            return True  # nothing in the question to look for
        if evidence.coverage < self.min_coverage:
            return True
        if self.similarity_floor is None or evidence.coverage >= self.sure_coverage:
            return False
        return evidence.similarity < self.similarity_floor
