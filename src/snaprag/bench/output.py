"""The one writer of benchmark results: pretty JSON, UTF-8, written atomically."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..fs import atomic_write_text


def write_json(result: dict[str, Any], path: Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(result, indent=2, ensure_ascii=False) + "\n")
