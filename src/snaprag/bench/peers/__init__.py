"""``snaprag bench peers``: snaprag against the systems users pick instead, in one run.

``catalog`` (the systems, their pinned installs and variants), ``envs`` (one virtual
environment per peer), ``drivers/`` (one script per system, run by that environment's
Python), ``passes`` (one driver process, measured from outside), ``scoring`` (pure
arithmetic), ``harness`` (the run), ``report`` (table) and ``charts`` (PNGs).
"""

from .harness import run
from .report import markdown, print_report

__all__ = ["markdown", "print_report", "run"]
