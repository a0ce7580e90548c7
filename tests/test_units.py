import pytest

from ipcbench.errors import UserError
from ipcbench.units import format_seconds, format_size, parse_int_list, parse_size, parse_size_list


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
