"""The command-line contract: output shapes, exit codes, messages, index selection.

Exit codes: 0 success, 1 some sources failed to ingest, 2 bad usage or an error that
stopped the command (with a message on stderr saying what to do next).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from snaprag import Engine

HIT_KEYS = {"id", "doc_id", "source", "page", "section", "score", "text"}
PAGES = [
    "Leave policy. Employees receive twenty-two vacation days per year under the Halvern "
    "leave policy.",
    "Field equipment. The Kestrel drone battery lasts forty minutes in cold weather.",
]


@pytest.fixture
def corpus(tmp_path: Path, make) -> Path:
    root = tmp_path / "docs"
    root.mkdir()
    (root / "guide.md").write_text(
        "# Espresso\n\nThe Zorblax espresso machine must be descaled every 45 days.\n"
    )
    (root / "notes.txt").write_text("The lighthouse keeper on Marrow Island feeds the cats.\n")
    make.pdf(root / "manual.pdf", PAGES)
    make.beir(
        root / "corpus.jsonl",
        [
            {
                "_id": "bridge-12",
                "title": "Bridge",
                "text": "The Tessaract bridge toll is four euros for bicycles.",
            },
            {"_id": "owl-3", "title": "Owls", "text": "Snowy owls hunt lemmings in the tundra."},
        ],
    )
    return root


@pytest.fixture
def index(tmp_path: Path, corpus: Path) -> Path:
    path = tmp_path / "index"
    with Engine.open(path) as eng:
        assert eng.ingest([corpus]).ok
    return path


def check_hit(hit: dict) -> None:
    assert set(hit) == HIT_KEYS
    assert isinstance(hit["id"], str) and isinstance(hit["doc_id"], str)
    assert hit["id"].startswith(hit["doc_id"] + "#")
    assert int(hit["id"].rsplit("#", 1)[1]) >= 0
    assert Path(hit["source"]).is_absolute()
    assert hit["page"] is None or (isinstance(hit["page"], int) and hit["page"] >= 1)
    assert (hit["page"] is not None) == hit["source"].endswith(".pdf")
    assert isinstance(hit["score"], float)
    assert isinstance(hit["text"], str) and hit["text"]


# --------------------------------------------------------------------------- search


def test_search_json_shape(index: Path, run_cli) -> None:
    res = run_cli(
        "search", "how many vacation days do employees get", "--index", index, "--json", "-k", "3"
    )
    assert res.returncode == 0, res.stderr
    assert len(res.stdout.strip().splitlines()) == 1  # one JSON document
    out = res.json()
    assert set(out) == {"query", "hits", "timings"}
    assert {"embed", "bm25", "dense", "fuse", "fetch"} <= set(out["timings"])
    assert out["query"] == "how many vacation days do employees get"
    assert len(out["hits"]) == 3
    for hit in out["hits"]:
        check_hit(hit)
    scores = [h["score"] for h in out["hits"]]
    assert scores == sorted(scores, reverse=True)
    top = out["hits"][0]
    assert Path(top["source"]).name == "manual.pdf" and top["page"] == 1
    assert "twenty-two" in top["text"]
    # -k is respected
    one = run_cli("search", "owls", "--index", index, "--json", "-k", "1").json()
    assert len(one["hits"]) == 1 and one["hits"][0]["doc_id"] == "owl-3"
    assert one["hits"][0]["id"] == "owl-3#0"
    table = run_cli("search", "owls", "--index", index, "-k", "1", "--timings")
    assert table.returncode == 0 and "where the time went" in table.stdout
    assert "cache (memory)" in table.stdout or "cache (disk)" in table.stdout  # asked before
    assert "total" in table.stdout
    asked = run_cli("ask", "how many vacation days?", "--index", index, "--timings")
    assert asked.returncode == 0 and "where the time went" in asked.stdout


def test_search_options(index: Path, run_cli) -> None:
    res = run_cli(
        "search",
        "drone battery",
        "--index",
        index,
        "--json",
        "-k",
        "10",
        "--type",
        "pdf",
        "--mode",
        "bm25",
    )
    assert res.returncode == 0, res.stderr
    hits = res.json()["hits"]
    assert [(Path(h["source"]).name, h["page"]) for h in hits] == [("manual.pdf", 2)]
    res = run_cli(
        "search",
        "drone battery",
        "--index",
        index,
        "--json",
        "-k",
        "10",
        "--source",
        "*.jsonl",
        "--mode",
        "dense",
    )
    hits = res.json()["hits"]
    assert len(hits) == 2 and {h["doc_id"] for h in hits} == {"bridge-12", "owl-3"}
    # human output
    res = run_cli("search", "Zorblax espresso", "--index", index, "-k", "2")
    assert res.returncode == 0 and "guide.md" in res.stdout


def test_search_queries_file(index: Path, tmp_path: Path, run_cli) -> None:
    queries = [
        {"_id": "q-drone", "text": "Kestrel drone battery in cold weather"},
        {"_id": 7, "text": "bridge toll for bicycles"},
        {"_id": "007", "text": "who feeds the cats on Marrow Island"},
        {"_id": 0, "text": "descaling the espresso machine"},
    ]
    qfile = tmp_path / "queries.jsonl"
    lines = [json.dumps(q) for q in queries]
    lines.insert(2, "")  # blank lines are skipped
    qfile.write_text("\n".join(lines) + "\n")
    res = run_cli("search", "--queries", qfile, "--index", index, "-k", "2", "--json")
    assert res.returncode == 0, res.stderr
    out = res.json_lines()
    assert len(out) == len(queries)
    assert [o["query_id"] for o in out] == [q["_id"] for q in queries]
    assert [type(o["query_id"]) for o in out] == [str, int, str, int]
    for o in out:
        assert set(o) == {"query_id", "hits"}
        assert len(o["hits"]) == 2
        for hit in o["hits"]:
            check_hit(hit)
    tops = [(Path(o["hits"][0]["source"]).name, o["hits"][0]["page"]) for o in out]
    assert tops == [
        ("manual.pdf", 2),
        ("corpus.jsonl", None),
        ("notes.txt", None),
        ("guide.md", None),
    ]
    assert out[1]["hits"][0]["doc_id"] == "bridge-12"
    k1 = run_cli("search", "--queries", qfile, "--index", index, "-k", "1", "--json")
    assert [len(o["hits"]) for o in k1.json_lines()] == [1, 1, 1, 1]


def test_search_queries_file_keeps_order_across_batches(
    index: Path, tmp_path: Path, run_cli
) -> None:
    n = 300  # more than one internal batch of queries
    topics = ["owls lemmings", "bridge toll", "espresso descaled", "lighthouse cats"]
    qfile = tmp_path / "many.jsonl"
    qfile.write_text(
        "".join(
            json.dumps({"_id": f"q{i}" if i % 2 else i, "text": topics[i % 4]}) + "\n"
            for i in range(n)
        )
    )
    res = run_cli("search", "--queries", qfile, "--index", index, "-k", "1", "--json")
    assert res.returncode == 0, res.stderr
    out = res.json_lines()
    assert [o["query_id"] for o in out] == [f"q{i}" if i % 2 else i for i in range(n)]
    want = ["corpus.jsonl", "corpus.jsonl", "guide.md", "notes.txt"]
    assert [Path(o["hits"][0]["source"]).name for o in out] == [want[i % 4] for i in range(n)]


@pytest.mark.parametrize(
    ("bad_line", "why"),
    [
        ("{not json", "invalid JSON"),
        ('{"_id": "q3"}', "no text"),
        ('{"text": "no id"}', "no _id"),
        ('["q3", "a list"]', "not an object"),
        ('"just a string"', "a JSON string"),
    ],
)
def test_malformed_queries_file(
    index: Path, tmp_path: Path, run_cli, bad_line: str, why: str
) -> None:
    qfile = tmp_path / "queries.jsonl"
    good = [json.dumps({"_id": f"q{i}", "text": "owls"}) for i in (1, 2)]
    qfile.write_text("\n".join([*good, bad_line, good[0]]) + "\n")
    res = run_cli("search", "--queries", qfile, "--index", index, "-k", "1", "--json")
    assert res.returncode == 2, (why, res.stdout, res.stderr)
    assert "Traceback" not in res.stderr
    assert f"{qfile.name}:3" in res.err_flat, (why, res.stderr)  # names the line
    assert res.stdout == ""  # nothing half-done on stdout


def test_missing_queries_file(index: Path, tmp_path: Path, run_cli) -> None:
    res = run_cli("search", "--queries", tmp_path / "nope.jsonl", "--index", index)
    assert res.returncode == 2
    assert "nope.jsonl" in res.err_flat and "Traceback" not in res.stderr


def test_search_usage_errors(index: Path, tmp_path: Path, run_cli) -> None:
    qfile = tmp_path / "q.jsonl"
    qfile.write_text('{"_id": 1, "text": "owls"}\n')
    cases = [
        ("search", "--index", index),  # neither QUERY nor --queries
        ("search", "owls", "--queries", qfile, "--index", index),  # both
        ("search", "owls", "--index", index, "--mode", "semantic"),
        ("search", "owls", "--index", index, "-k", "0"),
    ]
    for args in cases:
        res = run_cli(*args)
        assert res.returncode == 2, (args, res.stdout, res.stderr)
        assert "Traceback" not in res.stderr and res.stderr.strip(), args
    assert "hybrid" in run_cli(*cases[2]).err_flat  # names the allowed modes


# --------------------------------------------------------------------------- ask, stats


def test_ask_prints_citations(index: Path, run_cli) -> None:
    question = "How many vacation days do employees receive per year?"
    res = run_cli("ask", question, "--index", index)
    assert res.returncode == 0, res.stderr
    assert "twenty-two vacation days" in res.out_flat
    assert "[manual.pdf p.1]" in res.stdout
    pdf = str(Path(index).parent / "docs" / "manual.pdf")
    # the citation list: one line per source with its label and full path
    assert any("[manual.pdf p.1]" in line and pdf in line for line in res.stdout.splitlines())
    data = run_cli("ask", question, "--index", index, "--json").json()
    assert "[manual.pdf p.1]" in data["answer"]
    cite = data["citations"][0]
    assert cite["n"] == 1 and cite["page"] == 1 and cite["source"] == pdf
    assert cite["chunk_id"].startswith(cite["doc_id"] + "#")
    assert any(h["id"] == cite["chunk_id"] for h in data["hits"])


def test_stats_json(index: Path, run_cli) -> None:
    res = run_cli("stats", "--index", index, "--json")
    assert res.returncode == 0, res.stderr
    data = res.json()
    for key in ("documents", "chunks", "bytes", "model", "version"):
        assert key in data, key
    assert data["model"] == "minilm"
    assert data["documents"] == 5  # 3 files + 2 BEIR lines
    assert data["chunks"] >= 6  # the PDF has a chunk per page
    assert isinstance(data["version"], int) and data["version"] >= 1
    assert isinstance(data["bytes"], int) and data["bytes"] > 0
    assert data["partial_sources"] == 0
    with Engine.open(index) as eng:
        expected = eng.stats()
    for key in ("documents", "chunks", "model", "version", "sources"):
        assert data[key] == expected[key], key
    human = run_cli("stats", "--index", index)
    assert human.returncode == 0 and "minilm" in human.stdout


# --------------------------------------------------------------------------- index selection


@pytest.mark.parametrize(
    "args",
    [
        ("search", "owls"),
        ("search", "owls", "--json"),
        ("ask", "what do owls hunt?"),
        ("stats",),
        ("stats", "--json"),
    ],
)
def test_missing_index(tmp_path: Path, run_cli, args: tuple[str, ...]) -> None:
    missing = tmp_path / "no-index-here"
    res = run_cli(*args, "--index", missing)
    assert res.returncode == 2, res.stdout
    assert "Traceback" not in res.stderr
    assert "snaprag ingest" in res.err_flat and str(missing) in res.err_flat
    assert res.stdout == ""
    assert not missing.exists()  # reading never creates an index


def test_index_option_and_env(tmp_path: Path, corpus: Path, run_cli) -> None:
    env_index = tmp_path / "from-env"
    opt_index = tmp_path / "from-option"
    # SNAPRAG_INDEX selects the index for every command
    res = run_cli("ingest", corpus, env={"SNAPRAG_INDEX": str(env_index)})
    assert res.returncode == 0, res.stderr
    assert (env_index / "snaprag.db").is_file()
    assert not (tmp_path / ".snaprag").exists()
    hits = run_cli(
        "search", "owls", "--json", "-k", "1", env={"SNAPRAG_INDEX": str(env_index)}
    ).json()["hits"]
    assert hits[0]["doc_id"] == "owl-3"
    assert run_cli("stats", "--index", env_index, "--json").json()["documents"] == 5
    # --index selects it too, and wins over the variable
    (corpus / "guide.md").unlink()
    res = run_cli("ingest", corpus, "--index", opt_index, env={"SNAPRAG_INDEX": str(env_index)})
    assert res.returncode == 0, res.stderr
    stats = run_cli(
        "stats", "--index", opt_index, "--json", env={"SNAPRAG_INDEX": str(env_index)}
    ).json()
    assert stats["documents"] == 4
    assert (
        run_cli("stats", "--json", env={"SNAPRAG_INDEX": str(env_index)}).json()["documents"] == 5
    )
    res = run_cli(
        "search",
        "owls",
        "--json",
        "--index",
        opt_index,
        env={"SNAPRAG_INDEX": str(tmp_path / "missing")},
    )
    assert res.returncode == 0 and res.json()["hits"][0]["doc_id"] == "owl-3"


def test_default_index_is_dot_snaprag(tmp_path: Path, corpus: Path, run_cli) -> None:
    work = tmp_path / "work"
    work.mkdir()
    assert run_cli("ingest", corpus, cwd=work).returncode == 0
    assert (work / ".snaprag" / "snaprag.db").is_file()
    res = run_cli("search", "owls", "--json", "-k", "1", cwd=work)
    assert res.returncode == 0 and res.json()["hits"][0]["doc_id"] == "owl-3"


def test_ingest_cli_json_report(tmp_path: Path, corpus: Path, run_cli) -> None:
    index = tmp_path / "index"
    res = run_cli("ingest", corpus, "--index", index, "--json")
    assert res.returncode == 0, res.stderr
    report = res.json()
    assert report["added"] == 4 and report["failed"] == 0
    assert report["chunks_embedded"] >= 6
    assert {Path(s["path"]).name for s in report["sources"]} == {
        "guide.md",
        "notes.txt",
        "manual.pdf",
        "corpus.jsonl",
    }
    again = run_cli("ingest", corpus, "--index", index, "--json").json()
    assert again["unchanged"] == 4 and again["sources"] == [] and again["chunks_embedded"] == 0
    (corpus / "notes.txt").unlink()
    pruned = run_cli("ingest", corpus, "--index", index, "--prune", "--json")
    assert pruned.returncode == 0
    assert pruned.json()["removed"] == 1


def test_console_script(index: Path, cli) -> None:
    exe = shutil.which("snaprag")
    if exe is None:
        pytest.skip("the snaprag console script is not on PATH")
    proc = subprocess.run(
        [exe, "stats", "--index", str(index), "--json"],
        env=cli.env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["documents"] == 5


# --------------------------------------------------------------------------- new-user fixes


def one_line_error(res) -> str:
    """The whole of stderr: exactly one line starting with 'error:', no traceback."""
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("error:") and "Traceback" not in res.stderr
    return lines[0]


def test_version(run_cli) -> None:
    from snaprag import __version__

    res = run_cli("--version")
    assert res.returncode == 0 and res.stdout.strip() == f"snaprag {__version__}"


@pytest.mark.parametrize("spelling", ["PDF", ".pdf", ".PDF", " pdf"])
def test_type_is_normalized(index: Path, run_cli, spelling: str) -> None:
    res = run_cli("search", "drone battery", "--index", index, "--json", "--type", spelling)
    assert res.returncode == 0, res.stderr
    assert {Path(h["source"]).name for h in res.json()["hits"]} == {"manual.pdf"}


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("search", "owls", "--type", "gif"), "docx, html, jsonl, md, pdf, txt"),
        (("search", "owls", "-k", "abc"), "-k"),
        (("search", "owls", "-k", "0"), "-k"),
        (("search", "owls", "--mode", "semantic"), "hybrid, dense, bm25"),
        (("search", "owls", "--no-such-option"), "--no-such-option"),
        (("ask", "owls?", "--type", "image"), "pdf"),
        (("ask", "owls?", "--llm-ctx", "10"), "llm_ctx"),
        (("ask", "owls?", "--llm", "gpt4"), "openai:BASE_URL"),
        (("ask", "owls?", "--temperature", "hot"), "--temperature"),
        (("cache", "warm", "--top", "-3"), "--top"),
        (("stats", "--config", "missing.toml"), "missing.toml not found"),
    ],
)
def test_bad_option_values_are_one_line_errors(
    index: Path, run_cli, args: tuple[str, ...], fragment: str
) -> None:
    res = run_cli(*args, "--index", index)
    assert res.returncode == 2, (args, res.stdout, res.stderr)
    assert fragment in one_line_error(res)
    assert res.stdout == ""


def test_modes_are_case_insensitive(index: Path, run_cli) -> None:
    res = run_cli("search", "drone battery", "--index", index, "--json", "--mode", "BM25")
    assert res.returncode == 0, res.stderr
    assert Path(res.json()["hits"][0]["source"]).name == "manual.pdf"


def test_too_long_query_is_refused(index: Path, run_cli) -> None:
    env = {"SNAPRAG_MAX_QUERY_CHARS": "20"}
    res = run_cli("search", "owls " * 10, "--index", index, env=env)
    assert res.returncode == 2
    assert "over the limit of 20" in one_line_error(res)
    assert run_cli("ask", "owls " * 10, "--index", index, env=env).returncode == 2
    assert run_cli("search", "owls", "--index", index, env=env).returncode == 0


def test_docs_lists_sources(index: Path, corpus: Path, run_cli) -> None:
    res = run_cli("docs", "--index", index, "--json")
    assert res.returncode == 0, res.stderr
    rows = {Path(r["path"]).name: r for r in res.json()}
    assert set(rows) == {"guide.md", "notes.txt", "manual.pdf", "corpus.jsonl"}
    for r in rows.values():
        assert set(r) == {"path", "type", "documents", "pages", "chunks", "ingested_at", "complete"}
        assert r["complete"] is True and r["chunks"] >= 1
        assert isinstance(r["ingested_at"], float)
    assert rows["manual.pdf"]["type"] == "pdf" and rows["manual.pdf"]["pages"] == 2
    assert rows["corpus.jsonl"]["documents"] == 2 and rows["guide.md"]["pages"] is None
    human = run_cli("docs", "--index", index)
    assert human.returncode == 0
    assert all(name in human.stdout for name in rows)


def test_delete_source_and_document(index: Path, corpus: Path, run_cli) -> None:
    res = run_cli("delete", "owl-3", "--index", index, "--json")
    assert res.returncode == 0, res.stderr
    assert res.json()["deleted"] == "document" and res.json()["chunks"] == 1
    hits = run_cli("search", "snowy owls lemmings", "--index", index, "--json").json()["hits"]
    assert "owl-3" not in {h["doc_id"] for h in hits}
    pdf = corpus / "manual.pdf"
    res = run_cli("delete", pdf, "--index", index)
    assert res.returncode == 0, res.stderr
    assert "manual.pdf" in res.stdout and "2 chunk(s)" in res.stdout
    names = {Path(r["path"]).name for r in run_cli("docs", "--index", index, "--json").json()}
    assert names == {"guide.md", "notes.txt", "corpus.jsonl"}
    gone = run_cli("delete", pdf, "--index", index)
    assert gone.returncode == 2 and "snaprag docs" in one_line_error(gone)


def test_ingest_exclude(tmp_path: Path, corpus: Path, run_cli) -> None:
    index = tmp_path / "index"
    res = run_cli(
        "ingest", corpus, "--index", index, "--json", "--exclude", "*.pdf", "--exclude", "c*.jsonl"
    )
    assert res.returncode == 0, res.stderr
    sources = {Path(s["path"]).name: s for s in res.json()["sources"]}
    assert {n for n, s in sources.items() if s["status"] == "added"} == {"guide.md", "notes.txt"}
    for name in ("manual.pdf", "corpus.jsonl"):
        assert sources[name]["status"] == "ignored" and "excluded" in sources[name]["reason"]


def test_unindexable_source_hints_at_exclude(tmp_path: Path, make, run_cli) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "ok.txt").write_text("The Brindle canal opens at dawn.\n")
    make.pdf(docs / "scan.pdf", [""])  # a page without a text layer
    index = tmp_path / "index"
    res = run_cli("ingest", docs, "--index", index)
    assert res.returncode == 1
    assert "no text layer" in res.out_flat
    assert "--exclude scan.pdf" in res.out_flat
    again = run_cli("ingest", docs, "--index", index, "--exclude", "scan.pdf")
    assert again.returncode == 0, again.stdout


def test_ingest_of_missing_path_creates_no_index(tmp_path: Path, run_cli) -> None:
    index = tmp_path / "new-index"
    for extra in ((), ("--json",)):
        res = run_cli("ingest", tmp_path / "nonexistent", "--index", index, *extra)
        assert res.returncode == 1, res.stderr
        assert "no such file" in res.out_flat
        assert not index.exists()
    res = run_cli("ingest", tmp_path / "nonexistent", cwd=tmp_path)
    assert not (tmp_path / ".snaprag").exists()


def test_queries_file_without_json_is_a_summary(index: Path, tmp_path: Path, run_cli) -> None:
    qfile = tmp_path / "q.jsonl"
    qfile.write_text(
        '{"_id": "q-owl", "text": "owls hunt lemmings"}\n{"_id": 2, "text": "bridge toll"}\n'
    )
    res = run_cli("search", "--queries", qfile, "--index", index, "-k", "3")
    assert res.returncode == 0, res.stderr
    assert not any(line.lstrip().startswith("{") for line in res.stdout.splitlines())
    assert "q-owl" in res.stdout and "corpus.jsonl" in res.stdout
    assert "2 queries" in res.out_flat


def test_ask_labels_timings_and_lists_each_source_once(index: Path, run_cli) -> None:
    res = run_cli("ask", "What is the toll for bicycles on the bridge?", "--index", index)
    assert res.returncode == 0, res.stderr
    last = res.stdout.strip().splitlines()[-1]
    assert "retrieval" in last and "answer" in last and "total" in last and "ms" in last
    source_lines = [line for line in res.stdout.splitlines() if line.startswith("  [")]
    paths = [line.split("] ")[-1].strip() for line in source_lines]
    assert paths and len(paths) == len(set(paths))


def test_escape_sequences_never_reach_the_terminal(tmp_path: Path, run_cli) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    name = "evil\x1b[2J\x1b]0;owned\x07\u202e.txt"
    (docs / name).write_text("The Quorvane turbine spins at nine hundred rpm. \x1b[31mred\n")
    (docs / ("broken\x1b[2J.pdf")).write_bytes(b"not a pdf")
    index = tmp_path / "index"
    outputs = [
        run_cli("ingest", docs, "--index", index),
        run_cli("docs", "--index", index),
        run_cli("search", "Quorvane turbine", "--index", index),
        run_cli("ask", "How fast does the Quorvane turbine spin?", "--index", index),
        run_cli("delete", "gone\x1b[2J", "--index", index),
        run_cli("search", "x", "--index", index, "--type", "\x1b[2J"),
    ]
    for res in outputs:
        assert "\x1b" not in res.stdout + res.stderr, (res.stdout, res.stderr)
        assert "\u202e" not in res.stdout + res.stderr
        assert "\x07" not in res.stdout + res.stderr
    assert "\\x1b[2J" in outputs[1].stdout  # shown, escaped
    # JSON keeps the exact name
    rows = run_cli("docs", "--index", index, "--json").json()
    assert Path(rows[0]["path"]).name == name
    hits = run_cli("search", "Quorvane turbine", "--index", index, "--json").json()["hits"]
    assert Path(hits[0]["source"]).name == name


# --------------------------------------------------------------------------- config


def test_config_file_and_show(index: Path, tmp_path: Path, run_cli) -> None:
    config = tmp_path / "snaprag.toml"
    config.write_text(
        f'[index]\nindex_dir = "{index}"\n[search]\nfusion = "rrf"\n'
        '[llm]\nllm_api_key = "sk-very-secret"\n'
    )
    # the file selects the index for every command
    res = run_cli("stats", "--config", config, "--json")
    assert res.returncode == 0, res.stderr
    assert res.json()["documents"] == 5
    via_env = run_cli("search", "owls", "--json", "-k", "1", env={"SNAPRAG_CONFIG": str(config)})
    assert via_env.json()["hits"][0]["doc_id"] == "owl-3"
    show = run_cli("config", "show", "--config", config, "--json", env={"SNAPRAG_RRF_K": "30"})
    assert show.returncode == 0, show.stderr
    data = show.json()
    assert data["config_file"] == str(config)
    sections = ["index", "ingest", "search", "cache", "llm", "server", "alerts", "observe"]
    assert list(data["settings"]) == sections
    search = data["settings"]["search"]
    assert search["fusion"] == {"value": "rrf", "source": f"file {config}"}
    assert search["rrf_k"] == {"value": 30, "source": "env SNAPRAG_RRF_K"}
    assert search["candidates"]["source"] == "default"
    assert data["settings"]["index"]["store"]["value"] == "sqlite"
    assert data["settings"]["llm"]["llm_api_key"]["value"] == "********"
    over = run_cli("config", "show", "--config", config, "--index", tmp_path / "x", "--json")
    assert over.json()["settings"]["index"]["index_dir"]["source"] == "option"
    human = run_cli("config", "show", "--config", config)
    assert human.returncode == 0
    assert "sk-very-secret" not in human.stdout + show.stdout
    assert "fusion" in human.stdout and "SNAPRAG_RRF_K" not in human.stdout


def test_config_file_errors(tmp_path: Path, index: Path, run_cli) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('[search]\nredis_url = "redis://x"\n')
    for args in (("stats",), ("search", "owls"), ("config", "show"), ("ingest", tmp_path)):
        res = run_cli(*args, "--config", config)
        assert res.returncode == 2, args
        line = one_line_error(res)
        assert str(config) in line and "redis_url" in line and "[cache]" in line
