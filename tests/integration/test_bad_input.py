"""Broken, hostile and unsupported files next to good ones: the run goes on, reports each.

Every bad file must come out as ``failed`` with a one-line reason (or ``ignored`` for an
unsupported type met while walking a directory); good files are indexed whatever their
place in the walk order; the CLI exits 1 and lists every failure; and a file that was
indexed once and later turns bad keeps what is stored.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from snaprag import Engine

#: the size limit of these tests: every bad file but the oversized one stays below it
LIMIT = 4096
GOOD_MD = "aardvark.md"  # sorts before every bad file
GOOD_PDF = "zebra.pdf"  # sorts after every bad file
GOOD_MD_TEXT = "# Aardvarks\n\nAardvarks dig burrows with their strong Quenlar claws at night.\n"
GOOD_PDF_TEXT = "The Glimmerhorn telescope mirror is polished every spring by the Ostrava team."

# file name -> (expected status, a word the reason must contain)
EXPECTED = {
    "corrupt.pdf": ("failed", "corrupt"),
    "encrypted.pdf": ("failed", "encrypted"),
    "truncated.pdf": ("failed", "PDF"),
    "binary.txt": ("failed", "binary"),
    "empty.txt": ("failed", "empty"),
    "latin1.txt": ("failed", "UTF-8"),
    "huge.md": ("failed", "too large"),
    "photo.png": ("ignored", "unsupported"),
}


def build_bad_dir(root: Path, make) -> Path:
    rng = random.Random(7)
    root.mkdir(parents=True, exist_ok=True)
    (root / GOOD_MD).write_text(GOOD_MD_TEXT, encoding="utf-8")
    make.pdf(root / GOOD_PDF, [GOOD_PDF_TEXT])
    # a PDF header followed by noise
    (root / "corrupt.pdf").write_bytes(b"%PDF-1.4\n" + rng.randbytes(2000))
    # a real PDF that needs a user password
    make.pdf(root / "encrypted.pdf", ["The Obsidian vault code is 4471."], user_password="s3cret")
    # a real PDF cut short: no xref, no trailer, part of the page stream
    whole = make.pdf(root / "truncated.pdf", ["Pelican harbour ferry timetable. " * 40])
    data = whole.read_bytes()
    whole.write_bytes(data[: len(data) // 3])
    # bytes with NULs under a .txt name
    (root / "binary.txt").write_bytes(bytes(range(256)) * 3)
    (root / "empty.txt").write_bytes(b"")
    # Latin-1, not UTF-8 (and not Korean CP949 either)
    (root / "latin1.txt").write_bytes(
        "Café crème brûlée, naïve façade, à la carte. ".encode("latin-1") * 3
    )
    (root / "photo.png").write_bytes(b"\x89PNG\r\n\x1a\n" + rng.randbytes(200))
    (root / "huge.md").write_text(
        "# Big\n\n" + "A perfectly fine paragraph that is simply too long. " * 200,
        encoding="utf-8",
    )
    assert (root / "huge.md").stat().st_size > LIMIT
    assert all(p.stat().st_size <= LIMIT for p in root.iterdir() if p.name != "huge.md")
    return root


@pytest.fixture
def bad_dir(tmp_path: Path, make) -> Path:
    return build_bad_dir(tmp_path / "docs", make)


def statuses(report) -> dict[str, tuple[str, str]]:
    return {Path(r.path).name: (r.status, r.reason) for r in report.results}


def test_bad_files_fail_alone(tmp_path: Path, bad_dir: Path) -> None:
    with Engine.open(tmp_path / "index", max_file_bytes=LIMIT) as eng:
        report = eng.ingest([bad_dir])
        got = statuses(report)
        assert got.pop(GOOD_MD) == ("added", "")
        assert got.pop(GOOD_PDF) == ("added", "")
        assert set(got) == set(EXPECTED)
        for name, (status, word) in EXPECTED.items():
            got_status, reason = got[name]
            assert got_status == status, (name, got[name])
            assert word.lower() in reason.lower(), (name, reason)
            assert reason.strip() and "\n" not in reason, (name, reason)
            assert len(reason) < 300, (name, reason)
        assert not report.ok
        assert len(report.failed) == sum(s == "failed" for s, _ in EXPECTED.values())
        stats = eng.stats()
        assert stats["sources"] == 2
        assert stats["partial_sources"] == 0
        assert eng.search("Quenlar claws", k=1)[0].source.endswith(GOOD_MD)
        hit = eng.search("Glimmerhorn telescope", k=1)[0]
        assert Path(hit.source).name == GOOD_PDF and hit.page == 1
        for word in ("Obsidian", "Pelican", "crème", "perfectly"):
            assert eng.search(word, k=5, mode="bm25") == [], word


def test_size_limit_is_a_setting(tmp_path: Path, bad_dir: Path) -> None:
    with Engine.open(tmp_path / "index") as eng:  # default limit: huge.md is fine
        got = statuses(eng.ingest([bad_dir]))
        assert got["huge.md"][0] == "added"
        assert got[GOOD_MD][0] == "added" and got[GOOD_PDF][0] == "added"
        assert eng.search("perfectly fine paragraph", k=1)[0].source.endswith("huge.md")


def test_unsupported_type_named_explicitly_fails(tmp_path: Path, bad_dir: Path) -> None:
    with Engine.open(tmp_path / "index") as eng:
        report = eng.ingest([bad_dir / "photo.png", bad_dir / GOOD_MD])
        got = statuses(report)
        assert got["photo.png"][0] == "failed"
        assert "unsupported" in got["photo.png"][1] and ".png" in got["photo.png"][1]
        assert got[GOOD_MD][0] == "added"


def test_pdf_with_empty_user_password_is_read(tmp_path: Path, make) -> None:
    """Owner-password-only ("print protected") PDFs open with the empty password."""
    docs = tmp_path / "docs"
    docs.mkdir()
    make.pdf(
        docs / "protected.pdf",
        ["Intro.", "The Nimbel kiln fires at 1280 degrees."],
        user_password="",
    )
    with Engine.open(tmp_path / "index") as eng:
        assert eng.ingest([docs]).ok
        hit = eng.search("Nimbel kiln temperature", k=1)[0]
        assert Path(hit.source).name == "protected.pdf" and hit.page == 2


def test_missing_path_fails(tmp_path: Path, bad_dir: Path) -> None:
    with Engine.open(tmp_path / "index") as eng:
        report = eng.ingest([tmp_path / "nope.txt", bad_dir / GOOD_MD])
        got = statuses(report)
        assert got["nope.txt"][0] == "failed" and got["nope.txt"][1]
        assert got[GOOD_MD][0] == "added"


def test_cli_exit_code_and_summary(tmp_path: Path, bad_dir: Path, run_cli) -> None:
    index = tmp_path / "index"
    res = run_cli("ingest", bad_dir, "--index", index, env={"SNAPRAG_MAX_FILE_BYTES": str(LIMIT)})
    assert res.returncode == 1, res.stderr
    assert "Traceback" not in res.stderr
    out = res.out_flat
    failed = [n for n, (s, _) in EXPECTED.items() if s == "failed"]
    for name, (status, word) in EXPECTED.items():
        line = next((ln for ln in res.stdout.splitlines() if f"/{name} " in ln), None)
        assert line is not None, f"{name} missing from the summary:\n{res.stdout}"
        assert status in line
        reason = line.split(f"/{name} ", 1)[1]
        assert word in reason, (name, line)
    assert f"{len(failed)} source(s) failed" in out
    assert "aardvark.md" not in out  # only problems are listed
    # the JSON report says the same, and the exit code does not depend on the format
    res = run_cli(
        "ingest", bad_dir, "--index", index, "--json", env={"SNAPRAG_MAX_FILE_BYTES": str(LIMIT)}
    )
    assert res.returncode == 1
    report = res.json()
    assert report["failed"] == len(failed)
    assert report["ignored"] == 1
    assert report["unchanged"] == 2  # the two good files
    listed = {Path(s["path"]).name: s for s in report["sources"]}
    for name in failed:
        assert listed[name]["status"] == "failed" and listed[name]["reason"]
    # only good files: exit 0
    good = tmp_path / "good"
    good.mkdir()
    (good / GOOD_MD).write_text(GOOD_MD_TEXT)
    res = run_cli("ingest", good, "--index", tmp_path / "index2")
    assert res.returncode == 0, res.stderr
    assert "source(s) failed" not in res.out_flat


def test_indexed_file_overwritten_with_garbage_keeps_old_content(tmp_path: Path, make) -> None:
    good = tmp_path / "good"
    good.mkdir()
    (good / GOOD_MD).write_text(GOOD_MD_TEXT)
    pdf = make.pdf(good / GOOD_PDF, ["Intro page.", GOOD_PDF_TEXT])
    with Engine.open(tmp_path / "index") as eng:
        assert eng.ingest([good]).ok
        before = eng.stats()
        # now both files turn to garbage
        pdf.write_bytes(b"%PDF-1.7\n" + random.Random(3).randbytes(3000))
        (good / GOOD_MD).write_bytes(b"\x00\x01\x02garbage\xff\xfe" * 50)
        report = eng.ingest([good])
        got = statuses(report)
        assert got[GOOD_PDF][0] == "failed" and "PDF" in got[GOOD_PDF][1]
        assert got[GOOD_MD][0] == "failed" and "binary" in got[GOOD_MD][1]
        after = eng.stats()
        for key in ("sources", "documents", "chunks", "version", "partial_sources"):
            assert after[key] == before[key], key
        hit = eng.search("Glimmerhorn telescope mirror", k=1)[0]
        assert Path(hit.source).name == GOOD_PDF and hit.page == 2
        assert GOOD_PDF_TEXT[:40] in " ".join(hit.text.split())
        assert eng.search("Quenlar", k=1, mode="bm25")[0].source.endswith(GOOD_MD)
        # and the failure is reported again next time (not skipped as unchanged)
        again = statuses(eng.ingest([good]))
        assert again[GOOD_PDF][0] == "failed" and again[GOOD_MD][0] == "failed"
        # prune does not remove a source that exists but fails to load
        assert eng.ingest([good], prune=True).count("removed") == 0
        assert eng.stats()["chunks"] == before["chunks"]


def test_cli_overwritten_file_reported_failed(tmp_path: Path, run_cli) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("The Wendle orchard grows forty kinds of pears.\n")
    index = tmp_path / "index"
    assert run_cli("ingest", docs, "--index", index).returncode == 0
    (docs / "a.txt").write_bytes(b"\x00" * 100)
    res = run_cli("ingest", docs, "--index", index)
    assert res.returncode == 1
    assert "a.txt" in res.out_flat and "binary file" in res.out_flat
    found = run_cli("search", "Wendle orchard pears", "--index", index, "--json", "-k", "1")
    assert found.returncode == 0
    assert found.json()["hits"][0]["source"].endswith("a.txt")


def test_failed_update_leaves_no_partial_source(tmp_path: Path, make) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    make.beir(docs / "a.jsonl", [{"_id": f"a{i}", "text": f"Alpha record {i}."} for i in range(3)])
    make.beir(
        docs / "b.jsonl",
        [{"_id": "b1", "text": "Bravo owls."}, {"_id": "b2", "text": "Bravo newts."}],
    )
    with Engine.open(tmp_path / "index") as eng:
        assert eng.ingest([docs]).ok
        before = eng.stats()
        # b.jsonl now claims an _id of a.jsonl in its middle line
        make.beir(
            docs / "b.jsonl",
            [
                {"_id": "b1", "text": "Bravo owls, changed."},
                {"_id": "a1", "text": "stolen"},
                {"_id": "b2", "text": "Bravo newts."},
            ],
        )
        got = statuses(eng.ingest([docs]))
        assert got["b.jsonl"][0] == "failed" and "a1" in got["b.jsonl"][1]
        after = eng.stats()
        assert after["chunks"] == before["chunks"]
        assert eng.search("owls", k=1, mode="bm25")[0].text == "Bravo owls."
        assert after["partial_sources"] == 0


def test_bad_beir_line_fails_whole_file(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    lines = [
        json.dumps({"_id": "ok1", "text": "Fine line about herons."}),
        "{not json",
        json.dumps({"text": "no id"}),
    ]
    (docs / "corpus.jsonl").write_text("\n".join(lines) + "\n")
    (docs / "ok.txt").write_text("Herons wade in the Tamsel marsh.\n")
    with Engine.open(tmp_path / "index") as eng:
        got = statuses(eng.ingest([docs]))
        assert got["corpus.jsonl"][0] == "failed" and "line 2" in got["corpus.jsonl"][1]
        assert got["ok.txt"][0] == "added"
        assert all(h.doc_id != "ok1" for h in eng.search("herons", k=5))


@pytest.mark.timeout(300)  # a FIFO opened for reading would block forever
def test_cli_hostile_paths_are_failed_sources(tmp_path: Path, run_cli) -> None:
    """A FIFO where an indexed file was, symlink loops (file and directory), a dangling link:
    each one failed or ignored source, with a summary and exit code 1, with or without
    --prune; everything else is indexed and nothing indexed is lost."""
    import os

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("The Wendle orchard grows forty kinds of pears.\n")
    (docs / "pipe.txt").write_text("Pipes carry water to the Fennick mill.\n")
    index = tmp_path / "index"
    assert run_cli("ingest", docs, "--index", index).returncode == 0
    (docs / "pipe.txt").unlink()
    os.mkfifo(docs / "pipe.txt")
    os.symlink(docs / "loop-b.txt", docs / "loop-a.txt")
    os.symlink(docs / "loop-a.txt", docs / "loop-b.txt")
    os.symlink(docs / "gone.txt", docs / "dangling.txt")
    (docs / "sub").mkdir()
    os.symlink(docs, docs / "sub" / "up")
    (docs / "z.md").write_text("# Zebras\n\nZebras graze on the Ostrava plain.\n")
    for extra in ((), ("--prune",)):
        res = run_cli("ingest", docs, "--index", index, *extra)
        assert res.returncode == 1, res.stderr
        assert "Traceback" not in res.stderr
        out = res.out_flat
        assert "not a regular file (FIFO)" in out
        assert "symlink loop" in out and "dangling symlink" in out
        assert "4 source(s) failed" in out
    report = run_cli("ingest", docs, "--index", index, "--json", "--prune").json()
    assert report["failed"] == 4  # pipe, two loop links, the dangling link
    assert report["removed"] == 0 and report["unchanged"] == 2
    found = run_cli("search", "Fennick mill pipes", "--index", index, "--json", "-k", "1")
    assert found.json()["hits"][0]["source"].endswith("pipe.txt")  # the stored text is kept


def test_missing_path_creates_no_index(tmp_path: Path, run_cli) -> None:
    res = run_cli("ingest", tmp_path / "nope", "--index", tmp_path / "index")
    assert res.returncode == 1 and "no such file or directory" in res.out_flat
    assert not (tmp_path / "index").exists()
