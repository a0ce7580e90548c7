"""Readers and writers of other tools' formats (pytest-benchmark JSON, pyperf JSON, CSV)."""
