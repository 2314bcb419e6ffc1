"""Test oracles: slow per-reading reference implementations of the engine and the detectors.

Plain scalar Python loops with the same semantics as the vectorized code, one reading at a time;
property tests (and the engine benchmark, as a baseline) check the vectorized code against them.
Never used in production.
"""
