"""Where gemm() runs one call as two M pieces (heuristics.json `m_splits`).

A call of M = q + r tokens, q a multiple of 128 and r small, gives a fused tile kernel a last
token tile that is nearly empty: it pays a whole row of tiles for r tokens. Where an entry covers
the call and the tactic selected for the whole call is of one of the entry's families, gemm()
runs that tactic on the first q rows only and the last r rows through the selection at M = r (a
small-batch kernel, which reads the weight once more): two launches on the caller's stream, each
on its own rows of x and out. Measured on an H200 (benchmarks/NOTES.md, "Nineteenth session").

An entry of `m_splits`: m_min, m_max (the M it covers), tail_of and tail_max (it covers M with
1 <= M mod tail_of <= tail_max; the split row is M - M mod tail_of), min_nk (a lower bound on
N * K), families (the families of the whole call's tactic it splits), cc (the compute
capabilities it was measured on, matched as a rule's: selection.rule_cc), why. Only calls without
a named tactic are split (gemm(tactic=...) runs that kernel on the whole call)."""

from __future__ import annotations

from .selection import heuristic_table

SPLIT_KEYS = ("m_min", "m_max", "tail_of", "tail_max", "min_nk", "families", "cc", "why")
ROW_ALIGN = 16      # the split row: x and out rows from there stay 16-byte aligned at any N and K


def checked_split(entry: dict) -> dict:
    """One m_splits entry, checked: its keys (SPLIT_KEYS, all of them), integers tail_of < m_min
    <= m_max (both pieces non-empty), tail_of a multiple of ROW_ALIGN, 1 <= tail_max < tail_of,
    min_nk a number, families a list of names, cc a list of integers; a bad table is a ValueError
    naming the entry."""
    if set(entry) != set(SPLIT_KEYS):
        raise ValueError(f"heuristics.json: m_splits entry {entry!r} needs exactly the keys {', '.join(SPLIT_KEYS)}")
    lo, hi, of, most = (entry[key] for key in ("m_min", "m_max", "tail_of", "tail_max"))
    fams, ccs = entry["families"], entry["cc"]
    if not (all(type(v) is int for v in (lo, hi, of, most)) and of < lo <= hi and of % ROW_ALIGN == 0
            and 1 <= most < of and type(entry["min_nk"]) in (int, float)
            and isinstance(fams, list) and fams and all(type(f) is str for f in fams)
            and isinstance(ccs, list) and all(type(c) is int for c in ccs)):
        raise ValueError(f"heuristics.json: m_splits entry {entry!r}: needs integers tail_of < m_min <= m_max, "
                         f"tail_of a multiple of {ROW_ALIGN}, 1 <= tail_max < tail_of, min_nk a number, "
                         f"families a list of family names and cc a list of integers")
    return entry


def split_for(m: int, n: int, k: int, cc: int | None) -> tuple[int, frozenset[str]] | None:
    """(the split row, the families it applies to) for a call of M = m on an N x K layer, from the
    first entry that covers it, or None. cc: the path's compute capability (selection.rule_cc);
    None, as in offline tools: every entry."""
    for entry in heuristic_table().get("m_splits", []):
        e = checked_split(entry)
        if not e["m_min"] <= m <= e["m_max"] or n * k < e["min_nk"]:
            continue
        if cc is not None and cc not in e["cc"]:
            continue
        r = m % e["tail_of"]
        if 1 <= r <= e["tail_max"]:
            return m - r, frozenset(e["families"])
    return None


def cut(piece: tuple[int, int, int, int], q: int):
    """A kernels.pieces piece (m0, m1, n0, n1) cut at row q: (rows m0:q, rows q:m1), or None where
    q is not inside it."""
    m0, m1, n0, n1 = piece
    return ((m0, q, n0, n1), (q, m1, n0, n1)) if m0 < q < m1 else None
