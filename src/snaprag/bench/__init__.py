"""Benchmarks and evaluation on real IR collections (commands, not tests)."""
