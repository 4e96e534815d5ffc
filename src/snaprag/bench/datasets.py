"""Reading BEIR-layout collections: corpus, queries and qrels of one split."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from ..errors import QueryError


def load_queries(
    dataset: Path, split: str
) -> tuple[list[tuple[str, str]], dict[str, dict[str, int]]]:
    """Queries of ``split`` that have judgements, and the judgements."""
    qrels_path = dataset / "qrels" / f"{split}.tsv"
    if not qrels_path.exists():
        raise QueryError(f"{qrels_path} not found; is {dataset} a BEIR-layout folder?")
    qrels: dict[str, dict[str, int]] = {}
    with qrels_path.open(encoding="utf-8") as fh:
        rows = csv.reader(fh, delimiter="\t")
        for row in rows:
            if len(row) < 3 or not row[2].lstrip("-").isdigit():
                continue  # header
            qrels.setdefault(row[0], {})[row[1]] = int(row[2])
    queries: list[tuple[str, str]] = []
    for name in (f"queries.{split}.jsonl", "queries.jsonl"):
        path = dataset / name
        if path.exists():
            with path.open(encoding="utf-8") as fh:
                for line in fh:
                    if line.strip():
                        obj = json.loads(line)
                        if str(obj["_id"]) in qrels:
                            queries.append((str(obj["_id"]), obj["text"]))
            break
    return queries, qrels
