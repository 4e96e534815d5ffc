"""The outline evaluation with the PDF loader told to ignore bookmarks.

The bookmarks are the evaluation's queries, so headings recognised without them (font
size, numbering) are judged here: the loader reads no outline, the queries still come
from it. ``font``: headings from font size, else numbering (the loader as shipped);
``numbering``: numbering only (the loader before font sizes were read).

    python scripts/outline_without_bookmarks.py font /tmp/outline/dev-en [--cache DIR]

Use a cache directory of its own (``--cache``): the cached index of a folder is keyed by
the folder and settings, not by the loader, so the default cache would reuse an index
that read the bookmarks.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("variant", choices=("font", "numbering"))
    parser.add_argument("folder", type=Path)
    parser.add_argument("--cache", type=Path, required=True, help="a cache directory of its own")
    args = parser.parse_args()
    os.environ["SNAPRAG_CACHE_DIR"] = str(args.cache)
    import snaprag.ingest.loaders.pdf as pdf
    from snaprag.bench import outline

    pdf.read_outline = lambda reader: []  # type: ignore[assignment]
    if args.variant == "numbering":
        pdf.font_headings = lambda sized: []  # type: ignore[assignment]
    result = outline.run(args.folder)
    summary = {"variant": args.variant, "preset": result["preset"], **outline.last_line(result)}
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
