"""Benchmarks run by `invoke bench`: medians of several runs, never asserted by tests."""
