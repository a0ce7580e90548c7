"""Result files: the schema and its versions, atomic reading and writing, the per-case summary stored
in a file, frames for pandas, and other formats (CSV, pyperf, pytest-benchmark).
"""
