"""Benchmarks: figures, not pass/fail tests. Run with ``make bench`` (see docs/benchmarks.md)."""
