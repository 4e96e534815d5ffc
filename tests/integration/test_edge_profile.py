"""The edge profile end to end: ingest the bundled samples with ``--profile edge`` and the
real model, then search them from fresh processes.

The ingest writes the int8 snapshot that searchers memory-map; the searches return the
same hits as the default profile's exact float search; Korean analysis (Kiwi) is loaded
only once a Korean query comes.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
QUERIES = [
    "What is the lift capacity of the desk?",
    "how long does assembly take",
    "firmware update release notes",
]


@pytest.fixture(scope="module")
def edge_index(tmp_path_factory: pytest.TempPathFactory, cli) -> Path:
    index = tmp_path_factory.mktemp("edge") / "idx"
    proc = subprocess.run(
        cli.command("ingest", SAMPLES, "--profile", "edge", "--index", index, "--json"),
        env=cli.env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["failed"] == 0 and report["chunks_embedded"] > 0
    return index


def test_ingest_writes_the_memory_mapped_snapshot(edge_index: Path) -> None:
    metas = list((edge_index / "snapshots").glob("v*/snapshot.json"))
    assert len(metas) == 1
    assert json.loads(metas[0].read_text())["kind"] == "int8"
    folder = metas[0].parent
    assert (folder / "codes.npy").is_file() and (folder / "vectors-f16.npy").is_file()


def test_edge_search_finds_the_answer_and_matches_the_default_profile(
    edge_index: Path, run_cli
) -> None:
    for query in QUERIES:
        edge = run_cli("search", query, "--profile", "edge", "--index", edge_index, "--json")
        assert edge.returncode == 0, edge.stderr
        default = run_cli("search", query, "--index", edge_index, "--json")
        assert default.returncode == 0, default.stderr
        hits = edge.json()["hits"]
        # int8 candidates rescored from float16: the exact search's ranking and scores
        assert [h["id"] for h in hits] == [h["id"] for h in default.json()["hits"]]
        for a, b in zip(hits, default.json()["hits"], strict=True):
            assert a["score"] == pytest.approx(b["score"], abs=1e-5)
    by_env = run_cli(
        "search", QUERIES[0], "--index", edge_index, "--json", env={"SNAPRAG_PROFILE": "edge"}
    )
    assert "120 kg" in by_env.json()["hits"][0]["text"]


def test_unknown_profile_is_a_one_line_error(edge_index: Path, run_cli) -> None:
    result = run_cli("search", "desk", "--profile", "tiny", "--index", edge_index)
    assert result.returncode == 2
    assert "profile must be one of default, edge, quality; got 'tiny'" in result.err_flat


PROBE = """
import json, sys
from snaprag import Engine

with Engine.open(sys.argv[1], profile="edge") as engine:
    english = engine.search("What is the lift capacity of the desk?", k=3)
    after_english = "kiwipiepy" in sys.modules
    korean = engine.search("프레임과 모터의 보증 기간은 몇 년인가요?", k=3)
    print(json.dumps({
        "threads": engine.config.effective_threads,
        "english": english[0].text,
        "after_english": after_english,
        "after_korean": "kiwipiepy" in sys.modules,
        "korean": korean[0].text,
    }))
"""


def test_kiwi_loads_only_for_korean_queries(edge_index: Path, cli) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, str(edge_index)],
        env=cli.env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["threads"] == 1
    assert "120 kg" in out["english"]
    assert out["after_english"] is False
    assert out["after_korean"] is True
    assert "7년" in out["korean"]
