"""Process-stage runners by name (the contract is in :mod:`.base`).

=====================  ==================================================================
``local``              this process, one batch at a time (the default)
``ray``                Ray actors on a local Ray started for the run (extra ``ray``)
``ray:ADDRESS``        Ray actors on a running cluster: ``auto``, ``HOST:PORT`` or
                       ``ray://HOST:PORT`` (what ``ray start --head`` prints)
=====================  ==================================================================
"""

from .base import Pending, ProcessRunner, RunnerInfo, WorkerStats
from .factory import RUNNERS, create_runner, opened

__all__ = [
    "RUNNERS",
    "Pending",
    "ProcessRunner",
    "RunnerInfo",
    "WorkerStats",
    "create_runner",
    "opened",
]
