"""Tune Korean BM25 analysis, BM25 parameters and fusion on KorQuAD without re-embedding.

KorQuAD 1.0 has only a dev split, so its articles are split in two halves by a stable hash
of the article title (SHA-1, even = "tune", odd = "heldout"; 68 articles / 2,799
questions vs 72 / 2,975). Every setting is chosen on the tuning half only; the held-out
half and the full dev set are printed next to it for reporting, never for choosing.

What it reuses: the index that ``snaprag eval DATASET --preset PRESET`` built (same cache
key, built here if missing) for its chunks, titles and stored passage vectors, and the
engine's own query embedder (query vectors cached next to the index). Dense rankings are
the exact matrix product the engine runs. BM25 is rebuilt in memory for every variant with
:class:`snaprag.index.bm25.Bm25Index`; Korean variants are made from one Kiwi analysis of
every chunk and question, with the same normalisation and English handling as
:mod:`snaprag.index.tokenize`. Fusion is :func:`snaprag.search.fusion.weighted` (or RRF),
documents are ranked by their best chunk, as ``snaprag eval`` does.

Stages (``--stage``, default all):

* ``check``: the current defaults reproduced offline, next to the tokenizer's own output
  (must equal what ``snaprag eval`` reports).
* ``variants``: Korean analysis variants (which Kiwi tags are kept, bigrams, compounds,
  number + unit tokens, title repetition) at two BM25 settings.
* ``params``: k1 x b x dense weight for the chosen variant, per-script (Hangul terms only)
  as the engine does, plus RRF and candidate depth.
* ``latency``: per-query cost of tokenizing + BM25 for the old and new analysis.

Usage::

    python scripts/tune_korean.py [DATASET] [--preset e5-small] [--stage STAGE]
                                  [--out docs/results/korquad-korean-tuning.json]

DATASET defaults to ../shared/datasets/korquad/KorQuAD_v1.0_dev.json. Rows are printed as
JSON lines (nDCG@10 per half) and, with ``--out``, saved with the best-on-tune choices.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from snaprag.bench.eval import eval_workdir, load_collection
from snaprag.bench.metrics import evaluate
from snaprag.bench.squad import read_squad
from snaprag.config import Config
from snaprag.engine import Engine
from snaprag.index import tokenize as tok
from snaprag.index.bm25 import Bm25Index
from snaprag.index.retokenize import refresh_bm25_terms
from snaprag.index.store import Store
from snaprag.ingest.job import indexed_text
from snaprag.search import fusion
from snaprag.search.retriever import fusion_weights

DEFAULT_DATASET = (
    Path(__file__).resolve().parents[2] / "shared/datasets/korquad/KorQuAD_v1.0_dev.json"
)
HALVES = ("tune", "heldout", "full")
Ranked = tuple[np.ndarray, np.ndarray]

# Kiwi tags the engine keeps (snaprag.index.tokenize._KIWI_KEEP) and alternatives.
CURRENT_TAGS = frozenset(tok._KIWI_KEEP)
NOUN_TAGS = frozenset({"NNG", "NNP", "NNB", "NR", "NP", "XR"})
STEM_TAGS = frozenset(f"{t}{v}" for t in ("VV", "VA") for v in ("", "-I", "-R"))


def half_of(title: str) -> str:
    """``"tune"`` or ``"heldout"``: a stable split of the articles by title."""
    return (
        "tune" if int(hashlib.sha1(title.encode("utf-8")).hexdigest(), 16) % 2 == 0 else "heldout"
    )


class Collection:
    """Chunks, stored vectors, questions, qrels and halves of one cached eval index."""

    def __init__(self, dataset: Path, preset: str) -> None:
        self.dataset = dataset.resolve()
        config = Config.from_env(model=preset)
        work = eval_workdir(self.dataset, config)
        corpus, self.queries, self.qrels = load_collection(self.dataset, "dev", work / "collection")
        rows, _, _ = read_squad(self.dataset)
        title_of = {r["_id"]: r["title"] for r in rows}
        self.half = {q: half_of(title_of[next(iter(self.qrels[q]))]) for q, _ in self.queries}
        self.engine = Engine(config.with_(index_dir=work / "index"))
        self.engine.ingest([corpus])  # no-op when `snaprag eval` built it already
        refresh_bm25_terms(self.engine.db_path)
        store = Store(self.engine.db_path)
        try:
            dim = int(store.get_meta("dim") or 0)
            _, row_ids, self.matrix, self.stored_tokens = store.load_index_arrays(
                dim, store.get_meta("vector_dtype") or "float16"
            )
            with store.transaction() as conn:
                meta = conn.execute(
                    "SELECT c.id, d.doc_id, d.title, c.text FROM chunks c "
                    "JOIN documents d ON d.id = c.document_id ORDER BY c.id"
                ).fetchall()
        finally:
            store.close()
        if [r[0] for r in meta] != row_ids.tolist():
            raise SystemExit("index changed while reading it; run again")
        self.doc_of = np.array([r[1] for r in meta], dtype=object)
        self.titles = [r[2] for r in meta]
        self.chunk_texts = [indexed_text(r[2], r[3]) for r in meta]
        self.query_texts = [q for _, q in self.queries]
        self.qvec = self._query_vectors(work)

    def _query_vectors(self, work: Path) -> np.ndarray:
        key = hashlib.sha1("\n".join(self.query_texts).encode("utf-8")).hexdigest()[:12]
        path = work / f"tune-korean-queries-{key}.npy"
        if path.exists():
            return np.load(path)
        vectors = self.engine.embedder.embed_queries(self.query_texts)
        np.save(path, vectors)
        return vectors

    def dense(self, n: int) -> list[Ranked]:
        scores = self.qvec @ self.matrix.T
        out = []
        for row in scores:
            top = np.argsort(-row, kind="stable")[:n]
            out.append((top.astype(np.int64), row[top]))
        return out

    def ndcg(self, ranked: Sequence[Ranked]) -> dict[str, float]:
        """nDCG@10 per half, documents ranked by their best chunk."""
        run = {
            qid: list(self.doc_of[ids])
            for (qid, _), (ids, _) in zip(self.queries, ranked, strict=True)
        }
        out = {}
        for half in HALVES:
            qs = [q for q, _ in self.queries if half == "full" or self.half[q] == half]
            out[half] = round(evaluate({q: self.qrels[q] for q in qs}, run)["ndcg@10"], 4)
        return out


# ------------------------------------------------------------------ Korean analysis variants


class Analysis:
    """One Kiwi analysis of a list of texts, from which token-list variants are derived."""

    def __init__(self, texts: Sequence[str]) -> None:
        self.normed = [tok._normalize(t) for t in texts]
        self.words = [tok._english_words(t) for t in self.normed]
        tok._stem_in_place(self.words)
        analysed = tok._get_kiwi().tokenize(self.normed)
        self.morphs = [[(t.start, t.len, t.form, t.tag) for t in ts] for ts in analysed]

    def tokens(
        self,
        tags: frozenset[str] = CURRENT_TAGS,
        morphs: bool = True,
        bigrams: bool = False,
        compounds: bool = False,
        number_units: bool = False,
        title_lengths: Sequence[int] | None = None,
        title_repeat: int = 1,
    ) -> list[list[str]]:
        out = []
        for i, (text, words, ms) in enumerate(
            zip(self.normed, self.words, self.morphs, strict=True)
        ):
            items = list(words)
            if morphs:
                items += [(s, f) for s, _, f, t in ms if t in tags and tok._has_hangul(f)]
            if bigrams:
                items += tok._bigram_tokens(text)
            if compounds:
                items += _compounds(ms)
            if number_units:
                items += [
                    (a[0], a[2] + b[2])
                    for a, b in itertools.pairwise(ms)
                    if a[3] == "SN" and b[3] in ("NNB", "NNG") and a[0] + a[1] == b[0]
                ]
            if title_lengths is not None and title_repeat != 1:
                in_title = [x for x in items if x[0] < title_lengths[i]]
                items = [x for x in items if x[0] >= title_lengths[i]] + in_title * title_repeat
            items.sort(key=lambda x: x[0])
            out.append([w for _, w in items])
        return out


def _compounds(ms: Sequence[tuple[int, int, str, str]]) -> list[tuple[int, str]]:
    """Runs of adjacent nouns (no space between them) joined into one extra token."""
    out, run = [], []
    for start, length, form, tag in [*ms, (-1, 0, "", "")]:
        if tag in ("NNG", "NNP") and run and run[-1][0] + run[-1][1] == start:
            run.append((start, length, form))
            continue
        if len(run) > 1:
            out.append((run[0][0], "".join(r[2] for r in run)))
        run = [(start, length, form)] if tag in ("NNG", "NNP") else []
    return out


# ------------------------------------------------------------------ experiments


class Runner:
    def __init__(self, c: Collection, depth: int) -> None:
        self.c, self.depth = c, depth
        self.dense = c.dense(depth)
        self.rows: list[dict[str, Any]] = []

    def bm25(
        self, docs: list[list[str]], queries: list[list[str]], k1: float, b: float, per_script: bool
    ) -> list[Ranked]:
        if per_script:  # as the engine does: only Hangul terms get k1 and b
            index = Bm25Index.build(docs, hangul_k1=k1, hangul_b=b)
        else:
            index = Bm25Index.build(docs, k1, b, hangul_k1=k1, hangul_b=b)
        return index.search_many(queries, self.depth)

    def fuse(
        self,
        lexical: list[Ranked],
        weight: float,
        kind: str = "weighted",
        rrf_k: int = 60,
        depth: int | None = None,
    ) -> list[Ranked]:
        n = depth or self.depth
        out = []
        for (di, ds), (li, ls) in zip(self.dense, lexical, strict=True):
            lists = [(di[:n], ds[:n]), (li[:n], ls[:n])]
            if kind == "rrf":
                out.append(fusion.rrf(lists, [weight, 1.0], rrf_k, 300))
            else:
                out.append(fusion.weighted(lists, [weight, 1.0 - weight], 300))
        return out

    def record(self, **row: Any) -> dict[str, Any]:
        self.rows.append(row)
        print(json.dumps(row, ensure_ascii=False), flush=True)
        return row


def stage_check(r: Runner, docs: Analysis, queries: Analysis) -> None:
    c = r.c
    old_d = docs.tokens()
    old_q = queries.tokens()
    lexical = r.bm25(old_d, old_q, 1.2, 0.75, per_script=False)
    r.record(stage="check", setting="dense alone", ndcg=c.ndcg(r.dense))
    r.record(stage="check", setting="before: morph, k1 1.2 b .75, BM25", ndcg=c.ndcg(lexical))
    r.record(stage="check", setting="before: weighted .4/.6", ndcg=c.ndcg(r.fuse(lexical, 0.4)))
    new_q = tok.tokenize_many(c.query_texts)
    lexical = Bm25Index.build(c.stored_tokens).search_many(new_q, r.depth)
    r.record(stage="check", setting="engine defaults now, BM25", ndcg=c.ndcg(lexical))
    config = Config()
    fused = [
        fusion.weighted([d, lx], fusion_weights(q, config), 300)
        for d, lx, q in zip(r.dense, lexical, c.query_texts, strict=True)
    ]
    r.record(stage="check", setting="engine defaults now, hybrid", ndcg=c.ndcg(fused))


VARIANTS: dict[str, dict[str, Any]] = {
    "morph (before)": {},
    "morph, nouns only": {"tags": NOUN_TAGS},
    "morph, nouns + stems": {"tags": NOUN_TAGS | STEM_TAGS},
    "morph - adverbs/determiners": {"tags": CURRENT_TAGS - {"MAG", "MM"}},
    "morph - bound nouns": {"tags": CURRENT_TAGS - {"NNB"}},
    "morph + affixes": {"tags": CURRENT_TAGS | {"XSN", "XPN"}},
    "morph + number+unit (chosen)": {"number_units": True},
    "morph + compounds": {"compounds": True},
    "bigram only": {"morphs": False, "bigrams": True},
    "morph + bigram": {"bigrams": True},
    "morph + bigram + number+unit": {"bigrams": True, "number_units": True},
    "morph + bigram + number+unit + compounds": {
        "bigrams": True,
        "number_units": True,
        "compounds": True,
    },
    "title x0": {"title_repeat": 0},
    "title x2": {"title_repeat": 2},
    "title x3": {"title_repeat": 3},
}


def stage_variants(r: Runner, docs: Analysis, queries: Analysis) -> None:
    title_lengths = [
        len(tok._normalize(t)) if t and text.startswith(tok._normalize(t)) else 0
        for t, text in zip(r.c.titles, docs.normed, strict=True)
    ]
    for name, opts in VARIANTS.items():
        q_opts = {k: v for k, v in opts.items() if k != "title_repeat"}
        d = docs.tokens(**opts, title_lengths=title_lengths)
        q = queries.tokens(**q_opts)
        for k1, b in ((1.2, 0.75), (0.2, 0.5)):
            lexical = r.bm25(d, q, k1, b, per_script=False)
            r.record(
                stage="variants",
                variant=name,
                k1=k1,
                b=b,
                bm25=r.c.ndcg(lexical),
                weighted_04=r.c.ndcg(r.fuse(lexical, 0.4)),
            )


CHOSEN = "morph + number+unit (chosen)"


def stage_params(r: Runner, docs: Analysis, queries: Analysis) -> None:
    chosen = VARIANTS[CHOSEN]
    d, q = docs.tokens(**chosen), queries.tokens(**chosen)
    best: dict[str, Any] | None = None
    for k1 in (0.1, 0.2, 0.3, 0.45, 0.6, 0.9, 1.2):
        for b in (0.3, 0.5, 0.75):
            lexical = r.bm25(d, q, k1, b, per_script=True)
            for w in (0.3, 0.4, 0.5, 0.6):
                row = r.record(
                    stage="params",
                    hangul_k1=k1,
                    hangul_b=b,
                    dense_weight=w,
                    ndcg=r.c.ndcg(r.fuse(lexical, w)),
                )
                if best is None or row["ndcg"]["tune"] > best["ndcg"]["tune"]:
                    best = row
    r.record(stage="params", best_on_tune=best)
    lexical = r.bm25(d, q, 0.2, 0.5, per_script=True)
    r.record(stage="params", setting="BM25 alone, k1 .2 b .5", ndcg=r.c.ndcg(lexical))
    for w, k in ((1.0, 60), (1.0, 10), (1.25, 10)):
        r.record(
            stage="params",
            fusion="rrf",
            dense_weight=w,
            rrf_k=k,
            ndcg=r.c.ndcg(r.fuse(lexical, w, "rrf", k)),
        )
    for depth in (30, 100, 300):
        r.record(
            stage="params",
            candidates=depth,
            dense_weight=0.4,
            ndcg=r.c.ndcg(r.fuse(lexical, 0.4, depth=depth)),
        )


def stage_latency(r: Runner, docs: Analysis, queries: Analysis) -> None:
    """Tokenize + BM25 top-100 per question, one at a time, old and new, interleaved."""
    c = r.c
    old = Bm25Index.build(docs.tokens(), hangul_k1=1.2, hangul_b=0.75)
    new = Bm25Index.build(tok.tokenize_many(c.chunk_texts))
    texts = c.query_texts[:500]
    both = Bm25Index.build(tok.tokenize_many(c.chunk_texts, korean="morph+bigram"))
    indexes = {"before": (old, "morph"), "now": (new, tok.DEFAULT_KOREAN_MODE)}
    indexes["morph+bigram"] = (both, "morph+bigram")
    runs: dict[str, list[float]] = {name: [] for name in indexes}
    for _ in range(3):  # interleaved rounds
        for name, (index, mode) in indexes.items():
            for t in texts:
                t0 = time.perf_counter()
                index.search(tok.tokenize(t, korean=mode), 100)  # type: ignore[arg-type]
                runs[name].append((time.perf_counter() - t0) * 1000)
    for name, ms in runs.items():
        r.record(
            stage="latency",
            setting=name,
            questions=len(texts) * 3,
            p50_ms=round(float(np.percentile(ms, 50)), 3),
            p95_ms=round(float(np.percentile(ms, 95)), 3),
            postings=int(indexes[name][0]._indices.shape[0]),
        )


STAGES: dict[str, Callable[[Runner, Analysis, Analysis], None]] = {
    "check": stage_check,
    "variants": stage_variants,
    "params": stage_params,
    "latency": stage_latency,
}


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dataset", nargs="?", type=Path, default=DEFAULT_DATASET)
    ap.add_argument("--preset", default="e5-small")
    ap.add_argument("--stage", choices=[*STAGES, "all"], default="all")
    ap.add_argument("--depth", type=int, default=300, help="candidates per side (eval: 300)")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    c = Collection(args.dataset, args.preset)
    docs, queries = Analysis(c.chunk_texts), Analysis(c.query_texts)
    r = Runner(c, args.depth)
    print(f"# prepared in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    for name, stage in STAGES.items():
        if args.stage in (name, "all"):
            stage(r, docs, queries)
    if args.out:
        n_q = {h: sum(1 for q in c.half.values() if h == "full" or q == h) for h in HALVES}
        payload = {
            "dataset": c.dataset.name,
            "preset": args.preset,
            "split": "articles by SHA-1(title) parity: even = tune, odd = heldout",
            "questions": n_q,
            "chunks": len(c.chunk_texts),
            "depth": args.depth,
            "rows": r.rows,
        }
        args.out.write_text(json.dumps(payload, ensure_ascii=False, indent=1) + "\n")


if __name__ == "__main__":
    main()
