"""pytest-benchmark suites: `pytest bench --benchmark-only` (not collected by the default run)."""
