"""Each peer's own virtual environment, so none of its dependencies enter snaprag's.

Created on first use under ``~/.cache/snaprag/peers/<name>-<hash of its requirements>``
with ``python -m venv`` and pip (so a changed pin gets a fresh environment and an old one
is never half-upgraded); a marker file written last says the install finished.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

from .catalog import Peer

MARKER = ".snaprag-peer-ready"


def peers_home() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "snaprag" / "peers"


def env_dir(name: str, requirements: tuple[str, ...], home: Path | None = None) -> Path:
    key = hashlib.sha1("\n".join(sorted(requirements)).encode()).hexdigest()[:10]
    return (home or peers_home()) / f"{name}-{key}"


def python_of(env: Path) -> Path:
    return env / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def ensure_env(
    name: str, requirements: tuple[str, ...], log: Path | None = None, home: Path | None = None
) -> Path:
    """The Python of an environment with ``requirements`` installed (built when missing);
    the current interpreter when there are none (snaprag itself)."""
    if not requirements:
        return Path(sys.executable)
    env = env_dir(name, requirements, home)
    if (env / MARKER).exists():
        return python_of(env)
    env.parent.mkdir(parents=True, exist_ok=True)
    out = open(log, "a", encoding="utf-8") if log else subprocess.DEVNULL  # noqa: SIM115
    try:
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(env)], check=True)
        cmd = [str(python_of(env)), "-m", "pip", "install", "--quiet", *requirements]
        done = subprocess.run(cmd, stdout=out, stderr=out, env=_clean_env())
    finally:
        if log:
            out.close()
    if done.returncode != 0:
        where = f"; see {log}" if log else ""
        raise RuntimeError(f"installing {name} ({' '.join(requirements)}) failed{where}")
    (env / MARKER).write_text("\n".join(requirements) + "\n", encoding="utf-8")
    return python_of(env)


def _clean_env() -> dict[str, str]:
    """This process's environment without what would leak snaprag's packages into a peer."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}


def driver_env(peer: Peer, extra: dict[str, str]) -> dict[str, str]:
    """The environment a driver runs in: a peer gets no PYTHONPATH; snaprag keeps it (its
    environment is the current one, which may point at a working tree)."""
    base = dict(os.environ) if not peer.requirements else _clean_env()
    # no hub: every model comes from the installed package; a library that tries the hub
    # fails fast instead of retrying the network
    base.update({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"})
    base.update(extra)
    return base
