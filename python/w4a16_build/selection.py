"""Which compiled tactic a call runs: tuned choice first, the shipped heuristic otherwise.

M buckets: every M from 1 to 16, then powers of two up to 8192. A call with M uses its bucket's
tuned choice if tuned (tuning.py writes them), else the heuristic table (heuristics.json: size rules
for layers smaller than every measured shape, then measured rows for the nearest measured shape
(M = 9-15, which have no rows of their own, the M = 16 rows: measured_rows_for_m), then rules that
rank kernels by their configuration, each family's `rank_key` in the generator's model; from M = 65
the CUTLASS tiles by a fitted cost, with a measured row only near its shape and on the card that
timed it). Choices are memoized per (device, dtype, mode, group, N, K, M): after the first call at
an M a selection is one dict lookup. Per M, not per bucket: the cost rule's choice depends on the
exact M (waves of tiles), and a bucket's first M must not decide for the others. A bucket `tune()`
kept the heuristic for is cached with an empty tactic: the heuristic then decides at each M.
"""

from __future__ import annotations

import bisect
import functools
import json
import logging
import math
from importlib import resources

import torch

from ._ext import build_info
from .kernels import (FORCE_SM80_ENV, card_of, check_device, compiled, compute_capability, device_key, fits, forced_sm80,
                      ptx_fallback, runs_on, tactics)
from .tune_cache import TuneCache, make_key

log = logging.getLogger("w4a16_build")

BUCKETS = list(range(1, 17)) + [32, 64, 128, 256, 512, 1024, 2048, 4096, 8192]


def bucket_for(m: int) -> int:
    """The smallest bucket >= m (the largest bucket for bigger M)."""
    i = bisect.bisect_left(BUCKETS, m)
    return BUCKETS[min(i, len(BUCKETS) - 1)]


def pick_bucket(tuned: dict[int, tuple[str, float]], m: int):
    """m's bucket's tuned choice, or None. A bucket tune() did not time falls to the heuristic,
    not to another bucket's choice: that was never measured at this M (tune() checks a choice
    against the heuristic only at its own bucket's M, smallest and middle M). An empty tactic
    (tune() kept the heuristic) is returned as it is: ranked_tactics reads it as "no tuned choice"."""
    return tuned.get(bucket_for(m))


@functools.lru_cache(maxsize=None)
def heuristic_table() -> dict:
    return json.loads(resources.files(__package__).joinpath("heuristics.json").read_text())


def measured_choice(dtype: str, mode: str, group: int, n: int, k: int, m: int,
                    max_distance: float | None = None, card: str | None = None,
                    same_card: bool = False) -> str | None:
    """The table's measured tactic for the nearest measured shape (log distance in N and K) with
    the same dtype, mode, group and M bucket, if the table has measured rows (and, with
    max_distance, if that shape is at most that far: |log N ratio| + |log K ratio|; with
    same_card, only where `card` is the table's measured_card, the card the rows were timed on).
    Per-column rows match any group: a per-column weight has one scale per row (its group_size is
    K), and the sweep stored those rows under its --group argument."""
    table = heuristic_table()
    row_maps = checked_row_maps(table)
    if same_card and (card is None or card != table.get("measured_card")):
        return None

    def rows_at(m_rows):
        return [r for r in table.get("measured", [])
                if r["dtype"] == dtype and r["mode"] == mode and (mode == "per_column" or r["group"] == group)
                and bucket_for(r["m"]) == bucket_for(m_rows)]

    rows = rows_at(m)
    if not rows:                # no row in m's own bucket: the M a measured_rows_for_m entry names
        rows = rows_at(next((to for lo, hi, to in row_maps if lo <= m <= hi), m))
    if not rows:
        return None
    def dist(r):
        return abs(math.log(r["n"] / n)) + abs(math.log(r["k"] / k))

    near = min(rows, key=lambda r: (dist(r), r["tactic"]))
    if max_distance is not None and dist(near) > max_distance:
        return None
    return near["tactic"]


TOKEN_STEP = 16   # the smallest token tile of every family at M <= 16 (GEMV m16, skinny m16, CUTLASS x16)


def checked_row_maps(table: dict) -> list[tuple[int, int, int]]:
    """The table's measured_rows_for_m as (m_min, m_max, m): a range of M whose calls take the rows
    of M = m where their own bucket has none (M = 9-15, which the sweep did not time, the rows of
    M = 16, whose choice runs them with the same tile). Every entry is checked, at each call (one
    or two entries; the memo makes it once per shape and M): integers, m_min <= m_max < m, m in
    the same 16-token step as the range, ranges not overlapping; a bad table is a ValueError
    naming the entry."""
    maps: list[tuple[int, int, int]] = []
    for r in table.get("measured_rows_for_m", []):
        lo, hi, to = (r.get(key) for key in ("m_min", "m_max", "m"))
        if (not all(type(v) is int for v in (lo, hi, to)) or not 1 <= lo <= hi < to
                or (lo - 1) // TOKEN_STEP != (to - 1) // TOKEN_STEP
                or any(lo <= h and l <= hi for l, h, _ in maps)):
            raise ValueError(f"heuristics.json: measured_rows_for_m entry {r!r} must map m_min..m_max (integers, "
                             f"no overlap with another entry) to an M m > m_max within the same "
                             f"{TOKEN_STEP}-token step")
        maps.append((lo, hi, to))
    return maps


SIZE_KEYS = ("max_nk", "max_n", "min_k", "min_n")


def is_size_rule(rule: dict) -> bool:
    """A rule bounded by the layer's size (max_nk: N * K, max_n: N; min_k, min_n: K, N from below)."""
    return any(key in rule for key in SIZE_KEYS)


def checked_tail(rule: dict) -> tuple[int, int]:
    """A rule's tail_of and tail_max, checked: both integers, 1 <= tail_max < tail_of; a bad
    table is a ValueError naming the rule."""
    of, most = rule.get("tail_of"), rule.get("tail_max")
    if not (type(of) is int and type(most) is int and 1 <= most < of):
        raise ValueError(f"heuristics.json: rule {rule.get('family')!r} (m_max {rule.get('m_max')}) needs tail_of and "
                         f"tail_max as integers with 1 <= tail_max < tail_of, got {of!r} and {most!r}")
    return of, most


def matching_rules(m: int, n: int, k: int | None, cc: int | None = None) -> list[dict]:
    """The rules of the table that cover the call, in table order: m_max (and m_min, where a rule
    has one) cover m; where a rule has tail_of and tail_max, m is 1 to tail_max tokens past a
    multiple of tail_of (a last token tile of tail_of that is mostly empty); where a rule has cc
    (compute capabilities, e.g. [90]: the GPUs it was measured for), the path's cc is one of them
    (rule_cc; None, no device given as in offline tools: every rule); and, where a rule has them,
    max_nk (an upper bound on N * K), max_n (on N), min_k and min_n (lower bounds on K and
    N) cover the layer: a size rule, which needs K. The last one has no size bound (the table's
    last rule covers every M)."""
    out = []
    for r in heuristic_table()["rules"]:
        if (r["m_max"] is not None and m > r["m_max"]) or m < r.get("m_min", 1):
            continue
        if cc is not None and "cc" in r and cc not in r["cc"]:
            continue
        if ("tail_of" in r or "tail_max" in r) and not 1 <= m % checked_tail(r)[0] <= r["tail_max"]:
            continue
        if is_size_rule(r):
            if (k is not None and n * k <= r.get("max_nk", n * k) and n <= r.get("max_n", n)
                    and k >= r.get("min_k", 0) and n >= r.get("min_n", 0)):
                out.append(r)
            continue
        out.append(r)
        return out
    raise ValueError("heuristics.json: no rule covers every M (the last rule must have m_max null)")


def names_fit(cfg, rule: dict) -> bool:
    """Whether a kernel has every axis value a size rule names (e.g. k_warps 8, stages 2): a size
    rule was measured for those kernels only, not for the rest of their family."""
    values = cfg.axis_values()
    return all(str(values[a]) == str(v) for a, v in rule.items() if a in values and a not in ("dtype", "mode"))


def rank_by_heuristic(kernels: list, m: int, n: int, sms: int, *, dtype: str | None = None,
                      mode: str | None = None, group: int | None = None, k: int | None = None,
                      card: str | None = None, cc: int | None = None) -> list[str]:
    """Names of `kernels` (configurations) ordered by the heuristic table. First the size rules
    that cover the call (small layers, the smallest M): each one's kernels (its family, the axis
    values it names) that can take m, by rank_key. Then the rest: the measured choice for the nearest measured
    shape (when the table has measured rows; within the rule's measured_max_distance of that shape
    where the rule has one, and only on the card that timed them (`card`, kernels.short_card) where
    it has measured_same_card: the "cost" rule), then by the first ordinary rule that covers m: the
    rule's family first, kernels that cannot take m last, the other families in the table's
    family_order, then each family's rank_key. A size rule
    ranks only the kernels with the axis values it names (names_fit); with none here it changes
    nothing. cc: the path's compute capability (rule_cc), for rules that name theirs."""
    *size_rules, rule = matching_rules(m, n, k, cc)
    ranked: list[str] = []
    rest = list(kernels)
    for sr in size_rules:
        fam = sorted((c for c in rest if c.family == sr["family"] and not (c.max_m and c.max_m < m)
                      and names_fit(c, sr)),
                     key=lambda c: (c.rank_key(m, n, sms, sr, k), c.name))
        ranked += [c.name for c in fam]
        taken = set(ranked)
        rest = [c for c in rest if c.name not in taken]
    # The nearest measured shape needs K as well as N.
    # A rule with measured_max_distance (the "cost" rule) takes a measured row only that near.
    first = (measured_choice(dtype, mode, group, n, k, m, rule.get("measured_max_distance"), card,
                             rule.get("measured_same_card", False))
             if dtype is not None and k is not None else None)

    order = heuristic_table().get("family_order", [])

    def key(cfg):
        miss = (cfg.family != rule["family"]) + 2 * bool(cfg.max_m and cfg.max_m < m)
        fam = order.index(cfg.family) if cfg.family in order else len(order)
        return (miss, fam, cfg.family, cfg.rank_key(m, n, sms, rule, k), cfg.name)

    tail = [cfg.name for cfg in sorted(rest, key=key)]
    if first in tail:
        tail.remove(first)
        tail.insert(0, first)
    return ranked + tail


def cache_key(device, build_hash, dtype, mode, group, n, k) -> str:
    """The tuning-cache key; with W4A16_FORCE_SM80=1 a key of its own, so that choices tuned on the
    SM80 path and on the GPU's own kernels never stand in for each other."""
    gpu, sms = device_key(device)
    if forced_sm80():
        gpu = f"{gpu} [{FORCE_SM80_ENV}]"
    return make_key(gpu, sms, build_hash, dtype, mode, group, n, k)


def tuned_choices(dtype, mode, group, n, k, device, cache: TuneCache | None = None) -> dict:
    """{bucket: (tactic, us)} the tuning cache holds for this shape on this device and build."""
    return (cache or TuneCache()).lookup(cache_key(device, build_info()["build_hash"], dtype, mode, group, n, k))


_tuned_memo: dict[tuple, dict] = {}


def tuned_choices_memoized(dtype, mode, group, n, k, device) -> dict:
    """tuned_choices of the default cache, read once per shape and process (the memo is per M, so
    the file would otherwise be read at every new M); forget_shape and clear_memo drop it."""
    key = (device.index, dtype, mode, group, n, k, forced_sm80())
    if key not in _tuned_memo:
        _tuned_memo[key] = tuned_choices(dtype, mode, group, n, k, device)
    return _tuned_memo[key]


# ------------------------------------------------------------------------------- memo

_memo: dict[tuple, str] = {}
_refused: set[tuple] = set()      # (device, dtype, mode, group, n, k, tactic) whose launch was refused
MEMO_LIMIT = 1 << 16              # choices kept; past it the memo starts over (a bound, not a cache policy)


def _memo_key(dtype, mode, group, n, k, m, device) -> tuple:
    return (device.index, dtype, mode, group, n, k, m, forced_sm80())


def clear_memo() -> None:
    _memo.clear()
    _tuned_memo.clear()
    _refused.clear()


def memoized(dtype, mode, group, n, k, m, device) -> str | None:
    """The remembered choice for this M (module docstring: memoized per M)."""
    return _memo.get(_memo_key(dtype, mode, group, n, k, m, device))


def remember_choice(dtype, mode, group, n, k, m, device, tactic: str) -> None:
    """Make `tactic` the memoized choice for this M (after the first choice could not launch)."""
    if len(_memo) >= MEMO_LIMIT:
        _memo.clear()
    _memo[_memo_key(dtype, mode, group, n, k, m, device)] = tactic


def _refused_key(dtype, mode, group, n, k, device, tactic: str) -> tuple:
    return (device.index, dtype, mode, group, n, k, tactic)


def remember_refused(dtype, mode, group, n, k, device, tactic: str) -> None:
    """A tactic whose launch this device refused for this shape: not chosen again for it at any M."""
    _refused.add(_refused_key(dtype, mode, group, n, k, device, tactic))


def forget_shape(dtype, mode, group, n, k) -> None:
    """Drop the memoized choices of one shape on every device and M (after tuning it)."""
    for key in [key for key in _memo if key[1:6] == (dtype, mode, group, n, k)]:
        del _memo[key]
    for key in [key for key in _tuned_memo if key[1:6] == (dtype, mode, group, n, k)]:
        del _tuned_memo[key]


# -------------------------------------------------------------------------- selection


def rule_cc(cc: int | None) -> int | None:
    """The compute capability a rule's `cc` is matched against: the device's, or 80 where
    W4A16_FORCE_SM80=1 runs the SM80 path (on Hopper too); None stays None."""
    return None if cc is None else (80 if forced_sm80() else cc)


def tail_rule_covers(m: int, n: int, k: int, cc: int | None) -> bool:
    """Whether a rule with tail_of covers this call. tune() checks a bucket's choice only at the
    bucket's own M and its two check points (tuning.check_points), at most one of them an M such a
    rule covers (2049 for bucket 4096; none for bucket 2048), so at those M the rule, not the
    bucket's tuned choice, ranks."""
    return any("tail_of" in r for r in matching_rules(m, n, k, cc)[:-1])


def ranked_tactics(dtype, mode, group, n, k, m, device: torch.device) -> list[str]:
    """Every compiled tactic of this dtype and mode, best first: the tuned choice for m's bucket
    (if any, if this build compiled it for this dtype and mode, and unless a tail rule covers the
    call: tail_rule_covers), then the heuristic order, the
    GPU's own kernels before an SM80 family's PTX on Hopper. Only the tactics that serve the GPU.
    Applicability is the caller's to check."""
    order = []
    cc = compute_capability(device)
    picked = pick_bucket(tuned_choices_memoized(dtype, mode, group, n, k, device), m)
    if picked is not None and picked[0] == "":
        pass                    # tune() kept the heuristic for this bucket: it decides per M below
    elif picked is not None and tail_rule_covers(m, n, k, rule_cc(cc)):
        pass                    # tune() did not check its choice across these M (just past a tile multiple): the rule decides
    elif picked is not None:
        if fits(picked[0], dtype, mode):
            order.append(picked[0])
        else:
            log.warning("w4a16_build: tuning cache %s names %s for a %s %s problem; ignored", TuneCache().path,
                        picked[0], dtype, mode)
    order += [t for t in heuristic_order(dtype, mode, group, n, k, m, check_device(device), cc,
                                         card=card_of(device)) if t not in order]
    return [t for t in order if serves(t, cc)]


def serves(tactic: str, cc: int) -> bool:
    """Whether a compiled tactic's family serves a device of compute capability cc (runs_on)."""
    cfg = compiled().get(tactic)
    return cfg is not None and runs_on(cfg, cc)


def is_ptx_fallback(tactic: str, cc: int) -> bool:
    """Whether a compiled tactic serves this device only as the SM80 PTX fallback (ptx_fallback)."""
    cfg = compiled().get(tactic)
    return cfg is not None and ptx_fallback(cfg, cc)


def heuristic_order(dtype, mode, group, n, k, m, sms: int, cc: int | None = None,
                    card: str | None = None) -> list[str]:
    """Every compiled tactic of this dtype and mode in the heuristic table's order (no tuning) for
    a device of `sms` SMs and short card name `card` (kernels.card_of); with the device's compute
    capability cc, the GPU's own kernels before an SM80 family's PTX (kernels.ptx_fallback; a
    stable sort), as gemm() ranks them."""
    kernels = [compiled()[t] for t in tactics(dtype, mode)]
    order = rank_by_heuristic(kernels, m, n, sms, dtype=dtype, mode=mode, group=group, k=k, card=card,
                              cc=rule_cc(cc))
    return order if cc is None else sorted(order, key=lambda t: is_ptx_fallback(t, cc))


def select_tactic(dtype: str, mode: str, group: int, n: int, k: int, m: int, device: torch.device,
                  applicable) -> str | None:
    """The tactic gemm() runs when none is given: the memoized choice, else the first of
    ranked_tactics that `applicable(name) -> bool` (can_implement for this exact call) accepts and
    whose launch this device has not refused for this shape (remember_refused)."""
    hit = memoized(dtype, mode, group, n, k, m, device)
    if hit is not None:
        return hit
    choice = next((t for t in ranked_tactics(dtype, mode, group, n, k, m, device)
                   if _refused_key(dtype, mode, group, n, k, device, t) not in _refused and applicable(t)), None)
    if choice is not None:
        remember_choice(dtype, mode, group, n, k, m, device, choice)
    return choice
