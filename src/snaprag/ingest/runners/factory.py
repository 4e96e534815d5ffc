"""Process-stage runners by name; see :mod:`snaprag.ingest.runners`."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from ...errors import ConfigError
from .base import ProcessRunner

__all__ = ["RUNNERS", "create_runner", "opened"]

#: the runner names :func:`create_runner` takes
RUNNERS = ("local", "ray", "ray:ADDRESS")


def create_runner(
    spec: str = "local", *, cpus_per_worker: float = 1.0, workers: int | None = None
) -> ProcessRunner:
    """The runner named ``spec``. ``cpus_per_worker`` and ``workers`` size a Ray pool
    (CPUs, hence ONNX threads, per actor; how many actors) and are refused for ``local``.
    Nothing starts here: a Ray runner starts Ray when it meets its first work item."""
    name, sep, address = spec.strip().partition(":")
    if name == "local" and not sep:
        if workers is not None or cpus_per_worker != 1.0:
            raise ConfigError("Ray workers and CPUs per worker need the Ray runner (--ray)")
        from .local import LocalRunner

        return LocalRunner()
    if name == "ray" and (address.strip() or not sep):
        from .ray import RayRunner

        return RayRunner(address.strip() or None, cpus_per_worker=cpus_per_worker, workers=workers)
    raise ConfigError(f"unknown ingest runner {spec!r}; expected one of: {', '.join(RUNNERS)}")


@contextlib.contextmanager
def opened(runner: ProcessRunner | str) -> Iterator[ProcessRunner]:
    """The runner itself, or the one a name makes, for a ``with`` block. A runner made
    here from its name is closed at the end; one passed in is left to its owner."""
    if not isinstance(runner, str):
        yield runner
        return
    made = create_runner(runner)
    try:
        yield made
    finally:
        made.close()
