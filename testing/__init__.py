"""Helpers the tests and the benchmarks share: private services, small lakehouses, faults, checksums."""
