"""Reproducible benchmarks; results are recorded in BENCHMARKS.md."""
