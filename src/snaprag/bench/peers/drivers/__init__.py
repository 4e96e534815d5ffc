"""Driver scripts, one per system: each is run by its system's own virtual environment's
Python (not imported by snaprag), reads a JSON spec on stdin and prints one JSON result
line. ``driver_common`` is the only helper they share; it needs the standard library only,
because a peer's environment has no snaprag in it."""
