"""splits.py: which calls gemm() runs as two M pieces (heuristics.json `m_splits`), checked without
a GPU: the entry's bounds, the split point, the pieces, and a malformed entry named in a
ValueError. That gemm() runs the pieces right (values, bias, graphs, a named tactic not split):
test_split_gpu.py."""

import pytest

pytest.importorskip("torch", reason="PyTorch is not installed")

from w4a16_build import splits  # noqa: E402
from w4a16_build.selection import heuristic_table  # noqa: E402

ENTRY = {"m_min": 200, "m_max": 1000, "tail_of": 128, "tail_max": 8, "min_nk": 1000, "cc": [90], "why": "test"}


@pytest.fixture
def table(monkeypatch):
    t = {"m_splits": [dict(ENTRY)]}
    monkeypatch.setattr(splits, "heuristic_table", lambda: t)
    return t


def test_the_shipped_entries_are_well_formed():
    entries = heuristic_table().get("m_splits", [])
    assert entries, "heuristics.json has no m_splits entry"
    for e in entries:
        splits.checked_split(e)


def test_an_entry_splits_only_m_just_past_a_multiple_within_its_bounds(table):
    covered = [m for m in range(1, 1200) if splits.split_point(m, 100, 10, 90) is not None]
    assert covered == [m for m in range(200, 1001) if 1 <= m % 128 <= 8]
    assert splits.split_point(257, 100, 10, 90) == 256 and splits.split_point(264, 100, 10, 90) == 256
    assert splits.split_point(265, 100, 10, 90) is None and splits.split_point(256, 100, 10, 90) is None
    assert splits.split_point(257, 99, 10, 90) is None                    # N * K below min_nk
    assert splits.split_point(257, 100, 10, 80) is None                   # not measured on that cc
    assert splits.split_point(257, 100, 10, None) == 256                  # offline tools: every entry


def test_the_first_entry_that_covers_a_call_decides(table):
    table["m_splits"].append(dict(ENTRY, tail_of=64, tail_max=63, min_nk=1))
    assert splits.split_point(257, 100, 10, 90) == 256                    # the first entry
    assert splits.split_point(300, 100, 10, 90) == 256                    # only the second covers 300
    assert splits.split_point(300, 1, 1, 90) == 256


def test_split_rows_cuts_only_the_pieces_that_span_the_row():
    assert splits.split_rows([(0, 300, 0, 64)], None) == [(0, 300, 0, 64)]
    assert splits.split_rows([(0, 300, 0, 64)], 256) == [(0, 256, 0, 64), (256, 300, 0, 64)]
    parts = [(0, 300, 0, 32), (0, 300, 32, 64)]                           # pieces of N (a huge layer)
    assert splits.split_rows(parts, 256) == [(0, 256, 0, 32), (256, 300, 0, 32), (0, 256, 32, 64),
                                             (256, 300, 32, 64)]
    assert splits.split_rows([(0, 256, 0, 64), (256, 300, 0, 64)], 256) == [(0, 256, 0, 64), (256, 300, 0, 64)]


@pytest.mark.parametrize("bad", [
    {"tail_of": 120},                       # split rows must stay 16-aligned
    {"tail_max": 0}, {"tail_max": 128}, {"tail_of": 128.0},
    {"m_min": 128},                         # the first piece would be empty at M = 129..
    {"m_max": 100},                         # m_min > m_max
    {"min_nk": "40M"}, {"cc": 90}, {"cc": [9.0]},
])
def test_a_malformed_entry_is_a_value_error_naming_it(table, bad):
    table["m_splits"][0] = dict(ENTRY, **bad)
    with pytest.raises(ValueError, match="m_splits entry"):
        splits.split_point(257, 100, 10, 90)


@pytest.mark.parametrize("change", ["missing", "extra"])
def test_an_entry_with_missing_or_unknown_keys_is_a_value_error(table, change):
    e = dict(ENTRY)
    if change == "missing":
        del e["min_nk"]
    else:
        e["max_nk"] = 5
    table["m_splits"][0] = e
    with pytest.raises(ValueError, match="needs exactly the keys"):
        splits.split_point(257, 100, 10, 90)
