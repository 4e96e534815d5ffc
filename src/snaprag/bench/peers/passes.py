"""One pass: a driver process run by a system's own Python, fed a JSON spec on stdin, its
JSON result read from stdout, its memory sampled from outside (the driver may start worker
processes), and the rest of the machine's CPU recorded around it."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from ...system import child_pids
from .drivers.driver_common import RESULT_PREFIX
from .scoring import other_cpu, read_cpu_times

DRIVERS = Path(__file__).resolve().parent / "drivers"
#: how often the process tree's memory is sampled (cheap: a few /proc reads)
SAMPLE_S = 0.25


class PassError(RuntimeError):
    """A driver failed; the message ends with the tail of its log."""


def tree_rss(pid: int) -> int:
    """Resident bytes of ``pid`` and all its descendants now (0 when gone)."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/status", encoding="ascii") as fh:
                for line in fh:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
                        break
        except OSError:
            continue
        todo.extend(child_pids(p))
    return total


def run_pass(
    python: Path,
    driver: str,
    spec: dict[str, Any],
    env: dict[str, str],
    log: Path,
    timeout_s: float | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the driver's result, this pass's bookkeeping: wall time, tree peak RSS, other CPU)."""
    peak = 0
    done = threading.Event()
    before = read_cpu_times()
    spec = {**spec, "spawned_at": time.time()}
    t = time.perf_counter()
    with log.open("a", encoding="utf-8") as err:
        err.write(f"\n=== {driver} {spec['phase']} ===\n")
        err.flush()
        proc = subprocess.Popen(
            [str(python), str(DRIVERS / driver)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=err,
            env=env,
            text=True,
        )

        def sample() -> None:
            nonlocal peak
            while not done.wait(SAMPLE_S):
                peak = max(peak, tree_rss(proc.pid))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            out, _ = proc.communicate(json.dumps(spec), timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise PassError(f"{driver} {spec['phase']} ran past {timeout_s} s") from None
        finally:
            done.set()
            sampler.join()
    wall_s = time.perf_counter() - t
    after = read_cpu_times()
    lines = [ln for ln in out.splitlines() if ln.startswith(RESULT_PREFIX)]
    if proc.returncode != 0 or not lines:
        tail = "".join(log.read_text(encoding="utf-8").splitlines(keepends=True)[-15:])
        raise PassError(f"{driver} {spec['phase']} exited {proc.returncode}:\n{tail}")
    result = json.loads(lines[-1][len(RESULT_PREFIX) :])
    book = {
        "wall_s": round(wall_s, 2),
        "tree_peak_rss_bytes": peak,
        **other_cpu(before, after, wall_s),
    }
    return result, book


def dir_bytes(path: Path) -> int:
    """Bytes of every file under ``path`` (what the index costs on disk)."""
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
