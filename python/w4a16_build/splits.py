"""Where gemm() runs one call as two M pieces (heuristics.json `m_splits`).

A call of M = q + r tokens, q a multiple of 128 and r small, gives the fused kernels a last token
tile that is nearly empty: they pay a whole row of tiles for r tokens. On large layers it is
faster to run the first q tokens through the selection at M = q and the last r through the
selection at M = r (a small-batch kernel, which reads the weight once more): two launches on the
caller's stream, each on its own rows of x and out (kernels.pieces' pieces, cut at q). Measured
on an H200 (benchmarks/NOTES.md, "Nineteenth session").

An entry of `m_splits`: m_min, m_max (the M it covers), tail_of and tail_max (it covers M with
1 <= M mod tail_of <= tail_max; the split point is M - M mod tail_of), min_nk (a lower bound on
N * K), cc (the compute capabilities it was measured on, matched as a rule's: selection.rule_cc),
why. Only calls without a named tactic are split (gemm(tactic=...) runs that kernel on the whole
call)."""

from __future__ import annotations

from .selection import heuristic_table

SPLIT_KEYS = ("m_min", "m_max", "tail_of", "tail_max", "min_nk", "cc", "why")
ROW_ALIGN = 16      # the split point's row: x and out rows from there stay 16-byte aligned at any N, K


def checked_split(entry: dict) -> dict:
    """One m_splits entry, checked: its keys (SPLIT_KEYS, all of them), integers m_min <= m_max,
    tail_of a multiple of ROW_ALIGN, 1 <= tail_max < tail_of, m_min > tail_of (both pieces
    non-empty), min_nk a number, cc a list of integers; a bad table is a ValueError naming it."""
    keys = set(entry)
    if keys != set(SPLIT_KEYS):
        raise ValueError(f"heuristics.json: m_splits entry {entry!r} needs exactly the keys {', '.join(SPLIT_KEYS)}")
    lo, hi, of, most = (entry[key] for key in ("m_min", "m_max", "tail_of", "tail_max"))
    ints = all(type(v) is int for v in (lo, hi, of, most))
    if not (ints and of < lo <= hi and of % ROW_ALIGN == 0 and 1 <= most < of
            and type(entry["min_nk"]) in (int, float)
            and isinstance(entry["cc"], list) and all(type(c) is int for c in entry["cc"])):
        raise ValueError(f"heuristics.json: m_splits entry {entry!r}: needs integers tail_of < m_min <= m_max, "
                         f"tail_of a multiple of {ROW_ALIGN}, 1 <= tail_max < tail_of, min_nk a number and "
                         f"cc a list of integers")
    return entry


def split_point(m: int, n: int, k: int, cc: int | None) -> int | None:
    """The row at which gemm() splits a call of M = m on an N x K layer (the first entry that
    covers it), or None. cc: the path's compute capability (selection.rule_cc); None, as in
    offline tools: every entry."""
    for entry in heuristic_table().get("m_splits", []):
        e = checked_split(entry)
        if not e["m_min"] <= m <= e["m_max"] or n * k < e["min_nk"]:
            continue
        if cc is not None and cc not in e["cc"]:
            continue
        r = m % e["tail_of"]
        if 1 <= r <= e["tail_max"]:
            return m - r
    return None


def split_rows(parts: list[tuple[int, int, int, int]], q: int | None) -> list[tuple[int, int, int, int]]:
    """kernels.pieces' (m0, m1, n0, n1) pieces with every one that spans row q cut there."""
    if q is None:
        return parts
    out = []
    for m0, m1, n0, n1 in parts:
        out += [(m0, q, n0, n1), (q, m1, n0, n1)] if m0 < q < m1 else [(m0, m1, n0, n1)]
    return out
