import pytest

from ipcbench.errors import UserError
from ipcbench.units import (
    format_bytes_rate,
    format_change,
    format_count,
    format_count_rate,
    format_factor,
    format_finite,
    format_number,
    format_percent,
    format_ratio,
    format_seconds,
    format_size,
    parse_int_list,
    parse_size,
    parse_size_list,
)


@pytest.mark.parametrize("text,value", [("8", 8), ("1KiB", 1024), ("1k", 1024), ("1kB", 1000),
                                        ("16 MiB", 16 * 1024**2), ("0", 0), ("1.5KiB", 1536)])
def test_parse_size(text, value):
    assert parse_size(text) == value


@pytest.mark.parametrize("text,message", [("-8", "negative"), ("abc", "cannot read"), ("5 parsecs", "unknown size unit"),
                                          ("0.3", "whole number")])
def test_parse_size_errors(text, message):
    with pytest.raises(UserError, match=message):
        parse_size(text)


def test_size_list_sorted_unique():
    assert parse_size_list("64KiB,8,8,1KiB") == [8, 1024, 65536]
    with pytest.raises(UserError, match="empty"):
        parse_size_list(" , ")


def test_int_list():
    assert parse_int_list("4,1,2", "worker count") == [1, 2, 4]
    with pytest.raises(UserError, match="worker count must be 1 or more, got 0"):
        parse_int_list("0", "worker count")
    with pytest.raises(UserError, match="'x' is not a whole number"):
        parse_int_list("1,x", "worker count")


def test_formatting():
    assert [format_size(n) for n in (8, 1024, 16384, 1536, 1 << 20)] == ["8 B", "1 KiB", "16 KiB", "1.5 KiB", "1 MiB"]
    assert format_seconds(29.4e-6) == "29.4 µs"
    assert format_seconds(1.2e-3) == "1.2 ms"
    assert format_seconds(250e-9) == "250 ns"
    assert format_seconds(float("nan")) == "n/a"
    # the unit is chosen for the rounded number: never "1e+03 µs"
    assert format_seconds(999.9996e-6) == "1 ms" and format_seconds(0.9999996) == "1 s"
    assert format_seconds(3600) == "3600 s" and format_seconds(-29.4e-6) == "-29.4 µs"


def test_number_formatters():
    assert format_count_rate(4.5e6) == "4.5M" and format_bytes_rate(12.3e6) == "12.3 MB/s"
    # rounding up crosses into the next unit: 1M, not 1e+03k
    assert format_count_rate(999_999.9) == "1M" and format_count_rate(999.95) == "1k"
    assert format_count_rate(999.4) == "999" and format_count_rate(2.5e12) == "2500G"
    assert format_bytes_rate(999_999_999) == "1 GB/s" and format_bytes_rate(999.9) == "1 kB/s"
    assert format_bytes_rate(0) == "0 B/s" and format_count_rate(float("nan")) == "nan"
    assert format_ratio(1.66) == "1.7x" and format_ratio(9.96) == "10x"
    assert format_factor(1.0) == "1x" and format_factor(1.34) == "1.3x" and format_factor(12.4) == "12x"
    assert format_change(3.91) == "×3.9" and format_change(0.454) == "×0.45"
    assert format_percent(0.2) == "20%" and format_percent(0.999, 3) == "99.9%" and format_percent(0.001, 3) == "0.1%"
    assert format_count(1999.6) == "2000" and format_number(0.123456) == "0.1235"
    assert format_finite(1.23456, ".3f") == "1.235" and format_finite(float("nan"), ".3f") == "n/a"
    assert format_finite(None, ".2g", missing="–") == "–"
