"""The query cache, built from the config.

==================  ==============================================================
``cache = true``    :class:`~.query_cache.QueryCache`: L1 memory, L2 Redis (when
                    ``redis_url`` is set; extra ``redis``), L3 ``<index>/cache.db``
``cache = false``   no cache (None)
==================  ==============================================================
"""

from __future__ import annotations

from pathlib import Path

from ..config import Config
from .base import Cache


def create_cache(
    config: Config, index_dir: Path, index_id: str, read_only: bool = False
) -> Cache | None:
    """The query cache of an index, or None when ``config.cache`` is off.

    A read-only index gets no disk tier (nothing may be written there): memory and Redis.
    """
    if not config.cache:
        return None
    from .query_cache import QueryCache

    if read_only:
        config = config.with_(cache_disk=False)
    return QueryCache(config, index_dir=index_dir, index_id=index_id, persist=not read_only)
