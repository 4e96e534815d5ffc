"""snaprag: a fast, embedded retrieval-augmented generation engine."""

from .config import Config
from .engine import Engine
from .errors import SnapragError
from .types import Answer, Chunk, Citation, Document, Filters, Hit

__all__ = [
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
__version__ = "0.1.0"
