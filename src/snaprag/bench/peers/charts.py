"""PNG charts of a peers result, drawn by ``drivers/charts_driver.py`` in an environment
with matplotlib (built once like a peer's), so snaprag itself needs no plotting library."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from .catalog import CHARTS_REQUIREMENTS
from .envs import ensure_env
from .passes import DRIVERS


def draw(result: dict[str, Any], out_dir: Path, stem: str, log: Path | None = None) -> list[Path]:
    python = ensure_env("charts", CHARTS_REQUIREMENTS, log=log)
    spec = {"result": result, "out_dir": str(out_dir), "stem": stem}
    done = subprocess.run(
        [str(python), str(DRIVERS / "charts_driver.py")],
        input=json.dumps(spec),
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"drawing the charts failed:\n{done.stderr[-2000:]}")
    return [Path(p) for p in json.loads(done.stdout.strip().splitlines()[-1])]
