"""Completed minutes of :class:`~.windows.Windows` on disk (``telemetry.db``, SQLite).

One row per (minute, process) holding the minute's whole :class:`~.windows.Slot` as compact
JSON (sparse histograms: a few hundred bytes per series), so several server processes can
write the same file and a report merges them exactly. Rows older than ``KEEP_DAYS`` are
dropped as new ones are written.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
import zlib
from pathlib import Path
from typing import Any

from .windows import Slot

FILE_NAME = "telemetry.db"
KEEP_DAYS = 7


def _dump(slot: Slot) -> bytes:
    data = {
        "h": {k: [[b, n] for b, n in v.items()] for k, v in slot.hists.items()},
        "s": slot.sums,
        "e": slot.errors,
        "c": slot.counters,
        "g": slot.gauges,
        "q": slot.slow,
    }
    return zlib.compress(json.dumps(data, separators=(",", ":")).encode(), 6)


def _load(raw: bytes) -> Slot:
    data = json.loads(zlib.decompress(raw))
    return Slot(
        hists={k: {int(b): int(n) for b, n in v} for k, v in data["h"].items()},
        sums=data["s"],
        errors=data["e"],
        counters=data["c"],
        gauges={k: list(v) for k, v in data["g"].items()},
        slow=[(*x, "")[:4] for x in data["q"]],  # type: ignore[misc]  # older rows: no tenant
    )


class History:
    def __init__(self, folder: Path) -> None:
        self.path = Path(folder) / FILE_NAME

    def _connect(self) -> sqlite3.Connection:
        con = sqlite3.connect(self.path, timeout=5)
        con.execute("PRAGMA journal_mode=WAL")
        con.execute(
            "CREATE TABLE IF NOT EXISTS minutes (minute INTEGER, pid INTEGER, slot BLOB, "
            "PRIMARY KEY (minute, pid))"
        )
        return con

    def write(self, minutes: list[tuple[int, Slot]]) -> None:
        """Add completed minutes (merged with what this process wrote for them before)."""
        if not minutes:
            return
        pid = os.getpid()
        con = self._connect()
        try:
            with con:
                for minute, slot in minutes:
                    row = con.execute(
                        "SELECT slot FROM minutes WHERE minute = ? AND pid = ?", (minute, pid)
                    ).fetchone()
                    if row is not None:
                        merged = _load(row[0])
                        merged.merge(slot)
                        slot = merged
                    con.execute(
                        "INSERT OR REPLACE INTO minutes VALUES (?, ?, ?)",
                        (minute, pid, _dump(slot)),
                    )
                con.execute(
                    "DELETE FROM minutes WHERE minute < ?", (time.time() - KEEP_DAYS * 86_400,)
                )
        finally:
            con.close()

    def read(self, since: float, until: float | None = None) -> tuple[Slot, float, int]:
        """Every process's minutes in [since, until) merged: (slot, seconds of the minutes
        that served requests, rows)."""
        if not self.path.exists():
            return Slot(), 0.0, 0
        until = time.time() if until is None else until
        con = self._connect()
        try:
            rows = con.execute(
                "SELECT minute, slot FROM minutes WHERE minute >= ? AND minute < ?",
                (int(since) // 60 * 60, until),
            ).fetchall()
        finally:
            con.close()
        out = Slot()
        minutes = set()  # with requests: a minute of gauge samples alone is idle
        for minute, raw in rows:
            slot = _load(raw)
            out.merge(slot)
            if any(name.startswith("route:") for name in slot.hists):
                minutes.add(minute)
        return out, 60.0 * len(minutes), len(rows)

    def info(self) -> dict[str, Any]:
        if not self.path.exists():
            return {"path": str(self.path), "minutes": 0}
        con = self._connect()
        try:
            n, first, last = con.execute(
                "SELECT COUNT(DISTINCT minute), MIN(minute), MAX(minute) FROM minutes"
            ).fetchone()
        finally:
            con.close()
        return {"path": str(self.path), "minutes": n, "first": first, "last": last}
