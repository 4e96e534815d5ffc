"""The peers benchmark's harness logic, with fake drivers run by this interpreter (no peer
installed, no model loaded)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from snaprag.bench.metrics import ndcg_at
from snaprag.bench.peers import catalog, harness, markdown
from snaprag.bench.peers.envs import env_dir
from snaprag.bench.peers.passes import DRIVERS
from snaprag.bench.peers.report import ROWS, peer_wins, winner
from snaprag.bench.peers.scoring import (
    CpuTimes,
    best_chunk_ranking,
    idle_summary,
    other_cpu,
    pass_order,
    percentile,
    quality,
)


def test_pass_order_puts_every_system_once_in_every_position() -> None:
    labels = ["a", "b", "c"]
    orders = [pass_order(labels, r) for r in range(3)]
    assert orders == [["a", "b", "c"], ["b", "c", "a"], ["c", "a", "b"]]
    for pos in range(3):
        assert sorted(o[pos] for o in orders) == labels
    assert pass_order(labels, 3) == orders[0]
    assert pass_order([], 2) == []


def test_documents_are_ranked_by_their_best_chunk() -> None:
    chunks = ["d2", "d1", "d2", "d3", "d1", "d4"]
    assert best_chunk_ranking(chunks, 10) == ["d2", "d1", "d3", "d4"]
    assert best_chunk_ranking(chunks, 2) == ["d2", "d1"]


def test_quality_scores_document_rankings_from_chunks() -> None:
    qrels = {"q1": {"d1": 1}, "q2": {"d5": 1, "d6": 1}, "q3": {"d9": 0}}
    rankings = {
        "q1": ["d1", "d1", "d2"],  # perfect
        "q2": ["d7", "d5", "d5"] + [f"x{i}" for i in range(200)] + ["d6"],  # d6 past 100 docs
        "q3": ["d9"],  # no relevant document: not judged, not averaged
    }
    got = quality(qrels, rankings)
    q2_ndcg = ndcg_at(qrels["q2"], ["d7", "d5"], 10)
    assert got["ndcg@10"] == pytest.approx((1.0 + q2_ndcg) / 2)
    assert got["recall@100"] == pytest.approx((1.0 + 0.5) / 2)


def test_percentiles_match_numpy() -> None:
    values = [5.0, 1.0, 9.0, 3.0, 7.0, 2.0, 8.0]
    for q in (50, 95, 99):
        assert percentile(values, q) == pytest.approx(np.percentile(values, q))
    assert np.isnan(percentile([], 50))


def test_other_cpu_subtracts_our_own_time() -> None:
    # 10 s pass: the machine was busy 13 CPU-seconds, 8 of them ours -> 0.5 cores elsewhere
    got = other_cpu(CpuTimes(100.0, 20.0), CpuTimes(113.0, 28.0), 10.0)
    assert got == {"other_cpu_s": 5.0, "other_cores": 0.5, "busy": True}
    quiet = other_cpu(CpuTimes(0.0, 0.0), CpuTimes(4.1, 4.0), 10.0)
    assert quiet["busy"] is False and quiet["other_cores"] == pytest.approx(0.01)
    # clock ticks can make ours exceed the machine's count by a hair: never negative
    assert other_cpu(CpuTimes(0.0, 0.0), CpuTimes(1.0, 1.2), 1.0)["other_cpu_s"] == 0.0
    summary = idle_summary([quiet, got])
    assert summary["busy_passes"] == 1 and summary["idle"] is False
    assert summary["max_other_cores"] == 0.5


def test_winner_goes_to_a_peer_only_when_strictly_better() -> None:
    def system(label: str, p50: float, ndcg: float) -> dict:
        return {
            "label": label,
            "quality": {"ndcg@10": ndcg, "recall@100": 0.9},
            "query": {"single_ms": {"p50": p50}},
        }

    p50 = next(r for r in ROWS if r.name.startswith("query p50"))
    ndcg = next(r for r in ROWS if r.name == "nDCG@10")
    systems = [system("snaprag", 3.0, 0.70), system("ref", 3.0, 0.72)]
    assert winner(p50, systems) == "snaprag"  # a tie stays with the first listed
    assert winner(ndcg, systems) == "ref"


def test_resolve_names_and_rejects_unknown_peers() -> None:
    assert [p.name for p in catalog.resolve("chroma")] == ["snaprag", "chroma"]
    assert catalog.resolve(None)[0].name == "snaprag"
    with pytest.raises(ValueError, match="unknown nope"):
        catalog.resolve("chroma,nope")


def test_each_set_of_requirements_gets_its_own_environment(tmp_path: Path) -> None:
    a = env_dir("x", ("a==1", "b==2"), tmp_path)
    assert a == env_dir("x", ("b==2", "a==1"), tmp_path)  # order does not matter
    assert a != env_dir("x", ("a==1", "b==3"), tmp_path)  # a new pin: a fresh environment


FAKE_DRIVER = """
import sys, time
sys.path.insert(0, {drivers!r})
from driver_common import Searcher, main, read_corpus

def build(spec):
    import json, os
    rows = read_corpus(spec["corpus"])
    os.makedirs(spec["index_dir"], exist_ok=True)
    with open(os.path.join(spec["index_dir"], "rows.json"), "w") as fh:
        json.dump(rows, fh)
    return {{"model_load_s": 0.01, "ingest_s": 0.02, "items": len(rows)}}

class Overlap(Searcher):
    # ranks documents by shared words with the query ({batch} batch API)
    def __init__(self, spec):
        import json, os
        with open(os.path.join(spec["index_dir"], "rows.json")) as fh:
            self.rows = json.load(fh)
        if {batch}:
            self.search_batch = lambda qs, k: [self.search(q, k) for q in qs]

    def search(self, query, k):
        words = set(query.lower().split())
        scored = sorted(self.rows, key=lambda r: -len(words & set(r[1].lower().split())))
        return [doc_id for doc_id, _ in scored[:k]]

main(build, Overlap, ("numpy",))
"""


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    (root / "qrels").mkdir(parents=True)
    docs = [("d1", "red apples grow"), ("d2", "blue sky above"), ("d3", "green grass")]
    docs += [(f"x{i}", f"filler text {i}") for i in range(20)]
    with (root / "corpus.jsonl").open("w") as fh:
        for doc_id, text in docs:
            fh.write(json.dumps({"_id": doc_id, "title": "", "text": text}) + "\n")
    queries = [("q1", "red apples"), ("q2", "blue sky"), ("q3", "green grass")]
    with (root / "queries.jsonl").open("w") as fh:
        for qid, text in queries:
            fh.write(json.dumps({"_id": qid, "text": text}) + "\n")
    (root / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\t1\nq3\td3\t1\n"
    )
    return root


@pytest.fixture
def fake_peers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, batch in (("snaprag", True), ("fake", False)):
        path = tmp_path / f"{name}_fake_driver.py"
        path.write_text(FAKE_DRIVER.format(drivers=str(DRIVERS), batch=batch))
        peer = catalog.Peer(
            name,
            str(path),  # absolute: joined onto the drivers folder it stays itself
            (),  # no requirements: this interpreter runs it
            (catalog.Variant(name), catalog.Variant(f"{name} tuned", env={"X_TUNED": "1"})),
            f"a fake {name}",
        )
        monkeypatch.setitem(catalog.PEERS, name, peer)
    assert sys.executable


def test_a_run_alternates_systems_and_reports_every_measure(
    dataset: Path, fake_peers: None, tmp_path: Path
) -> None:
    said: list[str] = []
    result = harness.run(
        dataset, peers="fake", docs=5, queries=3, rounds=2, work=tmp_path / "w", log=said.append
    )
    labels = ["snaprag", "snaprag tuned", "fake", "fake tuned"]
    assert [s["label"] for s in result["systems"]] == labels
    assert result["documents"] == 5 and result["subset"] is True and result["queries"] == 3
    # builds once each, then two query rounds in rotated order
    assert result["order"] == [
        *(f"build:{x}" for x in labels),
        *(f"query:{x}" for x in labels),
        *(f"query:{x}" for x in [*labels[1:], labels[0]]),
    ]
    corpus = (tmp_path / "w" / "corpus.jsonl").read_text().splitlines()
    assert {json.loads(r)["_id"] for r in corpus} >= {"d1", "d2", "d3"}  # judged docs kept
    for s in result["systems"]:
        assert s["quality"] == {"ndcg@10": 1.0, "recall@100": 1.0}
        assert set(s["query"]["single_ms"]) == {"p50", "p95", "p99"}
        assert len(s["query"]["p50_per_round"]) == 2
        assert s["ingest"]["items"] == 5 and s["ingest"]["index_bytes"] > 0
        assert s["ingest"]["peak_rss_bytes"] > 0 and s["query"]["rss_bytes"] > 0
        assert s["query"]["first_answer_s"] > 0
        assert s["versions"]["numpy"] == np.__version__
        assert len(s["passes"]) == 3
        assert {"other_cores", "busy", "wall_s", "phase", "round"} <= set(s["passes"][0])
    by_label = {s["label"]: s for s in result["systems"]}
    assert by_label["snaprag"]["query"]["batched_ms_per_query"] is not None
    assert by_label["fake"]["query"]["batched_ms_per_query"] is None  # no batch API
    assert by_label["fake tuned"]["env"] == {"X_TUNED": "1"}
    assert result["idle"]["passes"] == 12
    json.dumps(result)  # the JSON written to docs/results/ must serialize as is
    table = markdown(result)
    assert table.startswith("| measure | snaprag | snaprag tuned | fake | fake tuned | best |")
    assert "batched ms/query" in table
    assert set(peer_wins(result)) <= {r.name for r in ROWS}
    assert any("query" in line for line in said)


def test_a_failing_driver_names_itself_and_shows_its_log(
    dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = tmp_path / "bad_driver.py"
    bad.write_text("import sys\nprint('boom: no such index', file=sys.stderr)\nsys.exit(3)\n")
    peer = catalog.Peer("snaprag", str(bad), (), (catalog.Variant("snaprag"),), "broken")
    monkeypatch.setitem(catalog.PEERS, "snaprag", peer)
    with pytest.raises(RuntimeError, match=r"(?s)bad_driver.py build exited 3.*boom"):
        harness.run(dataset, peers="snaprag", rounds=1, work=tmp_path / "w", log=lambda _: None)


def test_a_peer_driver_never_sees_snaprags_path(monkeypatch: pytest.MonkeyPatch) -> None:
    from snaprag.bench.peers.envs import driver_env

    monkeypatch.setenv("PYTHONPATH", "/somewhere/src")
    peer = catalog.PEERS["reference"]
    env = driver_env(peer, {"OPENBLAS_NUM_THREADS": "1"})
    assert "PYTHONPATH" not in env and env["OPENBLAS_NUM_THREADS"] == "1"
    assert env["HF_HUB_OFFLINE"] == "1"  # models come from the installed package only
    assert driver_env(catalog.PEERS["snaprag"], {})["PYTHONPATH"] == "/somewhere/src"


def test_variants_pick_defaults_or_the_best_honest_setting() -> None:
    ref = catalog.PEERS["reference"]
    assert catalog.pick_variants(ref, "default") == ref.variants[:1]
    assert catalog.pick_variants(ref, "tuned")[0].env["OMP_NUM_THREADS"] == "1"
    assert catalog.pick_variants(catalog.PEERS["snaprag"], "tuned")[0].label == "snaprag"
    with pytest.raises(ValueError, match="give one of all, default, tuned"):
        catalog.pick_variants(ref, "fast")


def test_the_table_says_when_a_peer_wins_a_row_and_when_systems_tie() -> None:
    from snaprag.bench.peers.report import table_rows

    def system(label: str, p50: float, recall: float) -> dict:
        return {
            "label": label,
            "quality": {"ndcg@10": 0.7, "recall@100": recall},
            "query": {
                "single_ms": {"p50": p50, "p95": p50, "p99": p50},
                "p50_per_round": [p50],
                "batched_ms_per_query": None,
                "first_answer_s": 1.0,
                "rss_bytes": 2**20,
            },
            "ingest": {
                "ingest_s": 1.0,
                "model_load_s": 1.0,
                "peak_rss_bytes": 2**20,
                "index_bytes": 2**20,
            },
        }

    systems = [system("snaprag", 3.0, 0.9), system("chroma", 2.0, 0.9), system("ref", 2.0, 0.8)]
    rows = {r[0]: r for r in table_rows({"systems": systems})}
    p50 = "query p50 ms (one by one, all rounds)"
    assert rows[p50][-1] == "chroma = ref (peer)"  # two peers tie ahead of snaprag: a peer win
    assert rows[p50][1:4] == ["3.00", "**2.00**", "**2.00**"]
    assert rows["Recall@100"][-1] == "snaprag = chroma"  # a tie with snaprag: no peer win
    assert rows["model load s"][-1] == "tie (all)"
    assert rows["batched ms/query"][-1] == "—"
    wins = peer_wins({"systems": systems})
    assert wins[p50] == "chroma = ref" and "Recall@100" not in wins
