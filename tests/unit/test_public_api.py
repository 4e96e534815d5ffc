"""The public API is what ``snaprag.__all__`` says, no more, no less."""

import snaprag


def test_all_is_pinned() -> None:
    assert sorted(snaprag.__all__) == [
        "Answer",
        "Chunk",
        "Citation",
        "Config",
        "Document",
        "Engine",
        "Filters",
        "Hit",
        "SnapragError",
    ]
    for name in snaprag.__all__:
        assert getattr(snaprag, name) is not None


def test_engine_api_shape() -> None:
    for method in ("open", "ingest", "search", "search_many", "ask", "stats", "warm_up"):
        assert callable(getattr(snaprag.Engine, method))
