"""Reading a SQuAD-format JSON file (e.g. KorQuAD) as a retrieval collection, unmodified.

Each paragraph is a document titled with its article's title; identical paragraphs are
merged into one document; each question is a query whose (merged) paragraph is the one
relevant document.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from ..errors import QueryError


def read_squad(path: Path) -> tuple[list[dict], list[tuple[str, str]], dict[str, dict[str, int]]]:
    """``(corpus rows {_id, title, text}, queries [(id, text)], qrels)``."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))["data"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise QueryError(f"{path} is not a SQuAD-format JSON file: {exc}") from exc
    corpus: dict[str, dict] = {}
    by_text: dict[str, str] = {}
    queries: list[tuple[str, str]] = []
    qrels: dict[str, dict[str, int]] = {}
    for article in data:
        title = str(article.get("title", ""))
        for para in article.get("paragraphs", []):
            context = str(para.get("context", "")).strip()
            if not context:
                continue
            doc_id = by_text.get(context)
            if doc_id is None:
                doc_id = "p" + hashlib.sha1(context.encode("utf-8")).hexdigest()[:12]
                by_text[context] = doc_id
                corpus[doc_id] = {"_id": doc_id, "title": title, "text": context}
            for qa in para.get("qas", []):
                qid = str(qa["id"])
                queries.append((qid, str(qa["question"])))
                qrels[qid] = {doc_id: 1}
    return list(corpus.values()), queries, qrels
