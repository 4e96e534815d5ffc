"""Ingest a small mixed corpus with the real model, then search, filter and ask over it:
the retrieval contract, run against every document store (``backend``: SQLite, Milvus).

Every fact in the corpus hangs on a made-up word that occurs in one place only, so the
right chunk is unambiguous for BM25, and the sentences are plain enough for the dense
side to agree.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from pathlib import Path

import pytest

from snaprag import Engine
from snaprag.errors import ConfigError
from snaprag.search.retriever import Filters

PDF_PAGES = [
    "Reactor maintenance. The Vantor reactor coolant must be replaced every nine months "
    "by a certified technician.",
    "Leave policy. Employees receive twenty-two vacation days per year under the Halvern "
    "leave policy.",
    "Field equipment. The Kestrel drone battery lasts forty minutes in cold weather.",
]
BEIR_DOCS = [
    {
        "_id": "penguin-7",
        "title": "Falkland penguins",
        "text": "Gentoo penguins in the Falkland colony molt their feathers in late summer.",
    },
    {
        "_id": "bridge-12",
        "title": "Tessaract bridge",
        "text": "The Tessaract bridge toll is four euros for bicycles and nine euros for cars.",
    },
    {
        "_id": "saffron-3",
        "title": "Saffron farming",
        "text": "Saffron crocus bulbs are planted in August and flower in October.",
    },
]
KO_REFUND = "환불 신청은 구매일로부터 14일 이내에 고객센터로 접수해야 합니다."
KO_SUBWAY = "서울 지하철 9호선은 출퇴근 시간에 급행 열차를 운행합니다."

# (query, file name of the expected top hit, expected page, a word of the expected text)
CASES = [
    ("how often must the espresso machine be descaled", "guide.md", None, "Zorblax"),
    ("who feeds the cats on Marrow Island", "notes.txt", None, "lighthouse"),
    ("where are parking permits for the Quillmont campus issued", "faq.html", None, "permits"),
    (
        "when does the Brindlewood office move to the new phone system",
        "rollout.docx",
        None,
        "Brindlewood",
    ),
    ("how often is the Vantor reactor coolant replaced", "manual.pdf", 1, "coolant"),
    ("how many vacation days do employees get", "manual.pdf", 2, "twenty-two"),
    ("how long does the Kestrel drone battery last in the cold", "manual.pdf", 3, "Kestrel"),
    ("bridge toll for bicycles", "corpus.jsonl", None, "Tessaract"),
]


def build_corpus(root: Path, make) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "notes.txt").write_text(
        "The lighthouse keeper on Marrow Island feeds seventeen cats every morning at dawn.\n",
        encoding="utf-8",
    )
    (root / "guide.md").write_text(
        "# Espresso guide\n\nThe **Zorblax** espresso machine must be descaled every 45 days "
        "using citric acid.\n",
        encoding="utf-8",
    )
    (root / "faq.html").write_text(
        "<html><head><title>Campus FAQ</title></head><body><h1>Campus FAQ</h1>"
        "<p>Parking permits for the Quillmont campus are issued by the transport office "
        "on the third floor.</p></body></html>",
        encoding="utf-8",
    )
    make.pdf(root / "manual.pdf", PDF_PAGES, title="Operations manual")
    make.docx(
        root / "rollout.docx",
        "Phone rollout",
        ["The Brindlewood office migrates to the new phone system on March 14."],
    )
    make.beir(root / "corpus.jsonl", BEIR_DOCS)
    (root / "refund-ko.txt").write_text(KO_REFUND + "\n", encoding="utf-8")
    (root / "subway-ko.md").write_text("# 지하철 안내\n\n" + KO_SUBWAY + "\n", encoding="utf-8")
    return root


N_SOURCES = 8
N_DOCUMENTS = N_SOURCES - 1 + len(BEIR_DOCS)  # one per file, one per BEIR line


@pytest.fixture
def corpus(tmp_path: Path, make) -> Path:
    return build_corpus(tmp_path / "corpus", make)


@pytest.fixture
def engine(tmp_path: Path, corpus: Path, backend: dict[str, str]):
    # the English model, named: with no model named the corpus (it has Korean documents)
    # would get the multilingual one (tests/integration/test_korean_hint.py)
    eng = Engine.open(tmp_path / "index", model="minilm", **backend)
    report = eng.ingest([corpus])
    assert report.ok, report.to_dict()
    yield eng
    eng.close()


def by_name(report) -> dict[str, str]:
    return {Path(r.path).name: r.status for r in report.results}


def names(hits) -> list[str]:
    return [Path(h.source).name for h in hits]


def all_chunk_ids(engine: Engine) -> list[str]:
    """Every chunk id, via search: dense mode ranks every chunk when k covers them all."""
    n = engine.stats()["chunks"]
    return [h.id for h in engine.search("anything at all", k=n + 50, mode="dense")]


def assert_no_duplicate_chunks(engine: Engine) -> None:
    stats = engine.stats()
    ids = all_chunk_ids(engine)
    assert len(ids) == len(set(ids)), "a chunk id is returned twice"
    assert len(ids) == stats["chunks"]
    if engine.config.store == "milvus":  # read in Milvus itself, as below in SQLite
        rows = engine.store.scan("chunks", "", ["doc_id", "seq"])
        seen = Counter((r["doc_id"], r["seq"]) for r in rows)
        assert [key for key, n in seen.items() if n > 1] == []
        return
    with sqlite3.connect(f"file:{engine.db_path}?mode=ro", uri=True) as conn:
        dupes = conn.execute(
            "SELECT d.doc_id, c.seq, COUNT(*) FROM chunks c JOIN documents d "
            "ON d.id = c.document_id GROUP BY d.doc_id, c.seq HAVING COUNT(*) > 1"
        ).fetchall()
    assert dupes == []


# --------------------------------------------------------------------------- ingest & search


def test_first_ingest_adds_every_source(tmp_path: Path, corpus: Path, backend) -> None:
    with Engine.open(tmp_path / "index", **backend) as eng:
        report = eng.ingest([corpus])
        assert report.ok
        assert set(by_name(report).values()) == {"added"}
        assert len(report.results) == N_SOURCES
        stats = eng.stats()
        assert stats["sources"] == N_SOURCES
        assert stats["documents"] == N_DOCUMENTS
        assert stats["chunks"] == report.chunks_embedded >= N_DOCUMENTS + len(PDF_PAGES) - 1
        assert stats["partial_sources"] == 0
        assert stats["model"] == "e5-small"  # picked for the corpus's Korean documents
        assert_no_duplicate_chunks(eng)


@pytest.mark.parametrize("mode", ["hybrid", "bm25", "dense"])
def test_search_finds_the_right_chunk(engine: Engine, mode: str) -> None:
    for query, name, page, word in CASES:
        hits = engine.search(query, k=3, mode=mode)
        assert hits, f"{mode}: no hits for {query!r}"
        top = hits[0]
        assert Path(top.source).name == name, f"{mode}: {query!r} -> {names(hits)}"
        assert top.page == page, f"{mode}: {query!r} -> page {top.page}"
        assert word in top.text
        assert top.id == f"{top.doc_id}#{top.id.rsplit('#', 1)[1]}"


def test_pdf_hits_carry_their_page(engine: Engine) -> None:
    hits = engine.search(
        "Vantor reactor Halvern vacation Kestrel drone", k=20, filters=Filters(type="pdf")
    )
    pages = {h.page: h.text for h in hits}
    assert sorted(pages) == [1, 2, 3]
    for page, text in pages.items():
        fact = PDF_PAGES[page - 1].split(". ", 1)[1][:30]
        assert fact in " ".join(text.split()), f"page {page} holds the wrong text: {text!r}"


def test_jsonl_hits_carry_the_beir_id(engine: Engine) -> None:
    for doc in BEIR_DOCS:
        hits = engine.search(doc["text"], k=1)
        assert hits[0].doc_id == doc["_id"]
        assert hits[0].id == f"{doc['_id']}#0"
        assert Path(hits[0].source).name == "corpus.jsonl"
        assert hits[0].page is None


def test_only_pdf_hits_have_pages(engine: Engine) -> None:
    hits = all_chunk_ids(engine)
    assert hits
    every = engine.search("anything at all", k=len(hits), mode="dense")
    for h in every:
        if h.source.endswith(".pdf"):
            assert h.page in (1, 2, 3), h
        else:
            assert h.page is None, h


SEARCH_MANY_QUERIES = [q for q, *_ in CASES] + ["고객센터 환불", "nothing related whatsoever"]

# With the default int8 model, ONNX Runtime's dynamic quantization picks one activation
# scale per batch tensor, so a query's vector depends slightly on the other queries (and
# padding) it is embedded with: near-ties may swap. fp32 (below) is exact; int8 must agree
# on the best hit and on nearly all of the top 5.


def assert_search_many_matches(engine: Engine, mode: str, exact: bool = True) -> None:
    queries = SEARCH_MANY_QUERIES
    batched = engine.search_many(queries, k=5, mode=mode)
    assert len(batched) == len(queries)
    for query, hits in zip(queries, batched, strict=True):
        single = engine.search(query, k=5, mode=mode)
        if exact:
            assert [h.id for h in hits] == [h.id for h in single], (mode, query)
            assert [h.score for h in hits] == pytest.approx([h.score for h in single], abs=1e-5)
        else:
            assert hits[0].id == single[0].id, (mode, query)
            assert len(hits) == len(single), (mode, query)
            assert len({h.id for h in hits} & {h.id for h in single}) >= min(4, len(single))
            assert [h.score for h in hits] == pytest.approx([h.score for h in single], abs=0.03)


@pytest.mark.parametrize("mode", ["hybrid", "dense", "bm25"])
def test_search_many_equals_search(engine: Engine, mode: str) -> None:
    assert_search_many_matches(engine, mode, exact=mode == "bm25")


def test_search_many_equals_search_fp32(tmp_path: Path, corpus: Path, backend) -> None:
    with Engine.open(
        tmp_path / "index-fp32", model="minilm", quantization="fp32", **backend
    ) as eng:
        assert eng.ingest([corpus]).ok
        for mode in ("hybrid", "dense", "bm25"):
            assert_search_many_matches(eng, mode)
        assert eng.search_many([], k=5) == []


def test_k_counts_chunks(engine: Engine) -> None:
    n = engine.stats()["chunks"]
    assert len(engine.search("policy", k=1)) == 1
    assert len(engine.search("policy", k=4, mode="dense")) == 4
    assert len(engine.search("policy", k=n + 10, mode="dense")) == n
    with pytest.raises(ConfigError):
        engine.search("policy", k=0)


def test_filter_by_type(engine: Engine) -> None:
    hits = engine.search("Kestrel drone battery", k=10, filters=Filters(type="jsonl"))
    assert hits
    assert {h.type for h in hits} == {"jsonl"}
    assert set(names(hits)) == {"corpus.jsonl"}
    pdf_hits = engine.search("bridge toll for bicycles", k=10, filters=Filters(type="pdf"))
    assert pdf_hits and {h.page for h in pdf_hits} <= {1, 2, 3}
    assert set(names(pdf_hits)) == {"manual.pdf"}
    with pytest.raises(ConfigError, match="docx, html, jsonl, md, pdf, txt"):
        Filters(type="pptx")


def test_filter_by_source(engine: Engine) -> None:
    # a substring of the path
    hits = engine.search("vacation days", k=10, filters=Filters(source="guide"))
    assert hits and set(names(hits)) == {"guide.md"}
    # a glob
    hits = engine.search("vacation days", k=10, filters=Filters(source="*.docx"))
    assert hits and set(names(hits)) == {"rollout.docx"}
    hits = engine.search("Marrow Island cats", k=10, filters=Filters(source="*-ko.*"))
    assert hits and set(names(hits)) == {"refund-ko.txt", "subway-ko.md"}
    # both at once
    hits = engine.search("drone", k=10, filters=Filters(source="*manual*", type="pdf"), mode="bm25")
    assert [(n, h.page) for n, h in zip(names(hits), hits, strict=True)] == [("manual.pdf", 3)]
    assert engine.search("drone", k=10, filters=Filters(source="*manual*", type="md")) == []
    for mode in ("bm25", "dense"):
        hits = engine.search("descaled", k=10, filters=Filters(source="*.md"), mode=mode)
        assert set(names(hits)) <= {"guide.md", "subway-ko.md"}


def test_modes(engine: Engine) -> None:
    # lexical: an exact rare word
    hits = engine.search("Zorblax", k=3, mode="bm25")
    assert names(hits) == ["guide.md"]  # bm25 only returns chunks that contain a term
    assert engine.search("xylophonic quuxification", k=3, mode="bm25") == []
    # dense: a paraphrase sharing no content word with the text
    hits = engine.search("coffee maker mineral buildup cleaning", k=3, mode="dense")
    assert names(hits)[0] == "guide.md"
    assert len(hits) == 3  # dense always ranks everything
    with pytest.raises(ConfigError):
        engine.search("x", mode="semantic")


def test_ask_cites_pdf_page(engine: Engine) -> None:
    answer = engine.ask("How many vacation days do employees receive per year?")
    assert "twenty-two vacation days" in answer.text
    assert "[manual.pdf p.2]" in answer.text
    assert answer.citations
    first = answer.citations[0]
    assert Path(first.source).name == "manual.pdf"
    assert first.page == 2
    assert first.label == "[manual.pdf p.2]"
    assert first.chunk_id.startswith(first.doc_id + "#")
    # every label in the text belongs to a citation, and the reverse
    for c in answer.citations:
        assert c.label in answer.text
        hit = next(h for h in answer.hits if h.id == c.chunk_id)
        assert (hit.source, hit.page, hit.doc_id) == (c.source, c.page, c.doc_id)
    assert [c.n for c in answer.citations] == list(range(1, len(answer.citations) + 1))
    d = answer.to_dict()
    assert d["citations"][0]["page"] == 2 and d["answer"] == answer.text


def test_ask_cites_non_pdf_without_page(engine: Engine) -> None:
    answer = engine.ask("How often must the Zorblax espresso machine be descaled?")
    assert "[guide.md]" in answer.text
    cited = {(Path(c.source).name, c.page) for c in answer.citations}
    assert ("guide.md", None) in cited


def test_korean_query_finds_korean_document(engine: Engine) -> None:
    # different particles and endings than the text: needs the morphological analysis
    query = "환불을 신청하려면 며칠 이내에 해야 하나요?"
    hits = engine.search(query, k=3, mode="bm25")
    assert hits and names(hits)[0] == "refund-ko.txt"
    assert "환불" in hits[0].text
    hits = engine.search("지하철 급행 열차 운행", k=3, mode="bm25")
    assert hits and names(hits)[0] == "subway-ko.md"
    assert engine.search(query, k=3)[0].source.endswith("refund-ko.txt")  # hybrid too


def test_english_model_leaves_korean_queries_to_bm25(engine: Engine) -> None:
    # the default English encoder cannot read Hangul: hybrid must equal BM25 for it,
    # while an English query still fuses both sides
    query = "지하철 급행 열차 운행"
    hybrid = engine.search_many([query, "parking permits"], k=5)
    assert [h.id for h in hybrid[0]] == [h.id for h in engine.search(query, k=5, mode="bm25")]
    english_bm25 = engine.search("parking permits", k=5, mode="bm25")
    assert [h.score for h in hybrid[1]] != [h.score for h in english_bm25]


# --------------------------------------------------------------------------- incremental


def test_reingest_unchanged_changes_nothing(engine: Engine, corpus: Path) -> None:
    before = engine.stats()
    ids_before = sorted(all_chunk_ids(engine))
    report = engine.ingest([corpus])
    assert report.ok
    assert set(by_name(report).values()) == {"unchanged"}
    assert len(report.results) == N_SOURCES
    assert report.chunks_embedded == 0
    after = engine.stats()
    assert after["version"] == before["version"]
    assert after["chunks"] == before["chunks"]
    assert after["documents"] == before["documents"]
    assert sorted(all_chunk_ids(engine)) == ids_before
    # a fresh engine on the same directory sees the same
    with Engine(engine.config) as again:
        assert set(by_name(again.ingest([corpus])).values()) == {"unchanged"}
        assert again.stats()["version"] == before["version"]
    assert_no_duplicate_chunks(engine)


def test_modified_file_is_updated(engine: Engine, corpus: Path) -> None:
    before = engine.stats()
    assert names(engine.search("Marrow Island", k=1, mode="bm25")) == ["notes.txt"]
    (corpus / "notes.txt").write_text(
        "The harbour master of Pelwick counts the fishing boats every Sunday evening.\n",
        encoding="utf-8",
    )
    report = engine.ingest([corpus])
    statuses = by_name(report)
    assert statuses.pop("notes.txt") == "updated"
    assert set(statuses.values()) == {"unchanged"}
    after = engine.stats()
    assert after["version"] > before["version"]
    assert after["chunks"] == before["chunks"]
    assert after["sources"] == before["sources"]
    # old text gone, new text found, from the same source
    assert engine.search("Marrow Island lighthouse", k=5, mode="bm25") == []
    assert all("Marrow" not in h.text for h in engine.search("lighthouse keeper cats", k=20))
    hits = engine.search("Pelwick harbour master", k=1)
    assert names(hits) == ["notes.txt"] and "Pelwick" in hits[0].text
    assert_no_duplicate_chunks(engine)


def test_modified_beir_corpus_updates_only_changed_lines(
    engine: Engine, corpus: Path, make
) -> None:
    before = engine.stats()
    docs = [dict(d) for d in BEIR_DOCS]
    docs[1]["text"] = "The Tessaract bridge is closed to bicycles since the Ombrel storm."
    del docs[2]  # saffron-3 goes away
    docs.append({"_id": "owl-99", "title": "Owls", "text": "Snowy owls hunt lemmings."})
    make.beir(corpus / "corpus.jsonl", docs)
    report = engine.ingest([corpus])
    assert by_name(report)["corpus.jsonl"] == "updated"
    assert report.chunks_embedded == 2  # the changed line and the new one
    after = engine.stats()
    assert after["documents"] == before["documents"]
    assert after["version"] > before["version"]
    hit = engine.search("Ombrel storm", k=1, mode="bm25")[0]
    assert hit.doc_id == "bridge-12" and "Ombrel" in hit.text
    assert engine.search("four euros", k=5, mode="bm25") == []
    assert engine.search("saffron crocus", k=5, mode="bm25") == []
    assert engine.search("lemmings", k=1)[0].doc_id == "owl-99"
    assert engine.search("penguins molt", k=1)[0].doc_id == "penguin-7"
    assert_no_duplicate_chunks(engine)


def test_deleted_file_is_removed_with_prune(engine: Engine, corpus: Path) -> None:
    before = engine.stats()
    faq_chunks = [
        h
        for h in engine.search("parking", k=before["chunks"], mode="dense")
        if h.source.endswith("faq.html")
    ]
    assert faq_chunks
    (corpus / "faq.html").unlink()
    # without prune: nothing is removed
    report = engine.ingest([corpus])
    assert "faq.html" not in by_name(report)
    assert engine.stats()["chunks"] == before["chunks"]
    # with prune: removed, its chunks gone
    report = engine.ingest([corpus], prune=True)
    statuses = by_name(report)
    assert statuses.pop("faq.html") == "removed"
    assert set(statuses.values()) == {"unchanged"}
    assert report.ok
    after = engine.stats()
    assert after["sources"] == before["sources"] - 1
    assert after["documents"] == before["documents"] - 1
    assert after["chunks"] == before["chunks"] - len(faq_chunks)
    assert after["version"] > before["version"]
    assert not any(h.source.endswith("faq.html") for h in engine.search("parking permits", k=50))
    assert engine.search("Quillmont", k=5, mode="bm25") == []
    # pruning again removes nothing
    again = engine.ingest([corpus], prune=True)
    assert set(by_name(again).values()) == {"unchanged"}
    assert engine.stats()["version"] == after["version"]
    assert_no_duplicate_chunks(engine)


def test_prune_only_touches_the_given_paths(tmp_path: Path, corpus: Path, backend) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (other / "keep.txt").write_text("The Ardent glacier retreats twelve metres a year.\n")
    with Engine.open(tmp_path / "index", model="minilm", **backend) as eng:
        eng.ingest([corpus, other])
        n = eng.stats()["sources"]
        report = eng.ingest([corpus], prune=True)  # other/ was not named: left alone
        assert report.count("removed") == 0
        assert eng.stats()["sources"] == n
        assert names(eng.search("Ardent glacier", k=1)) == ["keep.txt"]


def test_no_duplicates_across_many_runs(engine: Engine, corpus: Path) -> None:
    for i in range(3):
        (corpus / "notes.txt").write_text(f"Revision {i} of the Quorrel notes file.\n")
        engine.ingest([corpus])
        engine.ingest([corpus / "notes.txt", corpus])  # the same file named twice
        assert_no_duplicate_chunks(engine)
    assert engine.stats()["sources"] == N_SOURCES
    hits = engine.search("Quorrel notes revision", k=3, mode="bm25")
    assert names(hits) == ["notes.txt"] and "Revision 2" in hits[0].text


def test_ask_with_nothing_to_read(engine: Engine) -> None:
    answer = engine.ask("How many vacation days?", filters=Filters(source="*no-such-file*"))
    assert answer.citations == [] and answer.hits == []
    assert "[" not in answer.text and answer.text


def test_pdf_update_moves_pages(engine: Engine, corpus: Path, make) -> None:
    make.pdf(corpus / "manual.pdf", ["New cover page.", *PDF_PAGES])  # every fact moves on
    report = engine.ingest([corpus])
    assert by_name(report)["manual.pdf"] == "updated"
    for query, name, page, _ in CASES:
        if name == "manual.pdf":
            hit = engine.search(query, k=1)[0]
            assert (Path(hit.source).name, hit.page) == (name, page + 1), query
    assert_no_duplicate_chunks(engine)


def test_second_engine_sees_changes(engine: Engine, corpus: Path) -> None:
    """A searching engine picks up what another engine (process) committed since."""
    with Engine(engine.config) as reader:
        assert names(reader.search("Quillmont parking", k=1)) == ["faq.html"]
        (corpus / "faq.html").unlink()
        (corpus / "extra.txt").write_text("The Velmora ferry leaves at seven.\n")
        engine.ingest([corpus], prune=True)
        assert reader.search("Quillmont", k=5, mode="bm25") == []
        assert names(reader.search("Velmora ferry", k=1)) == ["extra.txt"]
        assert reader.stats()["version"] == engine.stats()["version"]
