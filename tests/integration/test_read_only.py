"""A read-only index (a read-only mount, or another user's files) is searched, never
written, and every refusal says "read-only" without suggesting to delete the index.

The index is bind-mounted read-only inside a private mount namespace (``unshare``), so
the test needs no cleanup and works as root, where file permissions alone would not stop
a write (root ignores them, but not a read-only mount).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

CHECK = r"""
import json, sys
from snaprag import Config, Engine
index = sys.argv[1]
out = {}
with Engine(Config(index_dir=index)) as e:
    out["read_only"] = e.store.read_only
    out["hits"] = [h.source.rsplit("/", 1)[-1] for h in e.search("warranty frame", k=3)]
    out["again"] = [h.source.rsplit("/", 1)[-1] for h in e.search("warranty frame", k=3)]
    out["answer"] = e.ask("How long is the frame warranty?").text
    out["stats"] = e.stats()
    try:
        e.ingest([sys.argv[2]])
    except Exception as exc:
        out["ingest_error"] = str(exc)
    try:
        e.delete(out["stats"]["index"] + "/nothing")
    except Exception as exc:
        out["delete_error"] = str(exc)
print(json.dumps(out))
"""


def _namespace_prefix() -> list[str]:
    """A command prefix that runs its command in a private mount namespace as root."""
    unshare = shutil.which("unshare")
    assert unshare, "the read-only test needs unshare (util-linux)"
    return [unshare, "-m"] if os.geteuid() == 0 else [unshare, "-r", "-m"]


def _run_read_only(index: Path, mnt: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    script = f"mount --bind -o ro {index} {mnt} && exec " + " ".join(f"'{a}'" for a in argv)
    return subprocess.run(
        [*_namespace_prefix(), "sh", "-c", script],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture(scope="module")
def ro_index(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    from snaprag import Engine

    root = tmp_path_factory.mktemp("ro")
    docs = Path(__file__).resolve().parents[2] / "samples"
    index, mnt = root / "index", root / "mnt"
    mnt.mkdir()
    with Engine.open(index) as e:
        assert e.ingest([docs]).ok
        e.search("warm the snapshot")  # a saved snapshot, as after any real use
    probe = _run_read_only(index, mnt, "touch", str(mnt / "probe"))
    assert probe.returncode != 0 and "Read-only" in probe.stderr, (
        f"could not make a read-only bind mount (unshare/mount refused): {probe.stderr.strip()}"
    )
    return index, mnt, docs


def test_python_api_searches_a_read_only_index(ro_index) -> None:
    index, mnt, docs = ro_index
    before = sorted(p.name for p in index.rglob("*"))
    res = _run_read_only(index, mnt, sys.executable, "-c", CHECK, str(mnt), str(docs))
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["read_only"] is True and out["stats"]["read_only"] is True
    assert out["hits"][0] == "warranty-and-service.pdf" and out["again"] == out["hits"]
    assert "[" in out["answer"]  # a cited extractive answer
    for key in ("ingest_error", "delete_error"):
        assert "read-only" in out[key], out[key]
        assert "move the index" not in out[key] and "delete" not in out[key].split("read-only")[0]
    assert sorted(p.name for p in index.rglob("*")) == before  # nothing written anywhere


def test_cli_on_a_read_only_index(ro_index) -> None:
    index, mnt, docs = ro_index
    cli = [sys.executable, "-m", "snaprag.cli"]
    search = _run_read_only(index, mnt, *cli, "search", "warranty", "--index", str(mnt), "--json")
    assert search.returncode == 0, search.stderr
    assert json.loads(search.stdout)["hits"]
    stats = _run_read_only(index, mnt, *cli, "stats", "--index", str(mnt), "--json")
    assert stats.returncode == 0 and json.loads(stats.stdout)["read_only"] is True
    ingest = _run_read_only(index, mnt, *cli, "ingest", str(docs), "--index", str(mnt))
    assert ingest.returncode == 2 and "read-only" in ingest.stderr
    assert "move the index" not in ingest.stderr + search.stderr
    clear = _run_read_only(index, mnt, *cli, "cache", "clear", "--index", str(mnt))
    assert clear.returncode == 1 and "disk: unreachable, not cleared" in clear.stdout
    assert "read-only" in clear.stderr
