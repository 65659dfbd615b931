"""Tactic selection: measured (profiler + cache) first, the shipped heuristic otherwise.

    w4a16_build.tune(n, k, "fp16", "groupwise", 128)   # time every tactic per M bucket, cache it
    w4a16_build.select_tactic(...)                     # what gemm() uses when tactic=None

M buckets: every M from 1 to 16, then powers of two up to 8192. A call with M
uses its bucket if tuned, else the next larger tuned bucket, else the
heuristic table (heuristics.json). Choices are memoized per (device, dtype,
mode, group, N, K, bucket): after the first call a selection is one dict
lookup. With W4A16_TUNE=1 an untuned shape is tuned on first use, except
during CUDA graph capture.
"""

from __future__ import annotations

import bisect
import functools
import json
import logging
import math
import os
import time
from importlib import resources

import torch

from .timing import n_copies, time_graph
from .tune_cache import TuneCache, make_key

log = logging.getLogger("w4a16_build")

BUCKETS = list(range(1, 17)) + [32, 64, 128, 256, 512, 1024, 2048, 4096, 8192]


def bucket_for(m: int) -> int:
    """The smallest bucket >= m (the largest bucket for bigger M)."""
    i = bisect.bisect_left(BUCKETS, m)
    return BUCKETS[min(i, len(BUCKETS) - 1)]


def pick_bucket(tuned: dict[int, tuple[str, float]], m: int):
    """Exact bucket, else the next larger tuned one; None if neither exists."""
    b = bucket_for(m)
    larger = sorted(x for x in tuned if x >= b)
    return tuned[larger[0]] if larger else None


@functools.lru_cache(maxsize=None)
def heuristic_table() -> dict:
    return json.loads(resources.files(__package__).joinpath("heuristics.json").read_text())


def measured_choice(dtype: str, mode: str, group: int, n: int, k: int, m: int) -> str | None:
    """The table's measured tactic for the nearest measured shape (log distance in N and K) with
    the same dtype, mode, group and M bucket, if the table has measured rows."""
    rows = [r for r in heuristic_table().get("measured", [])
            if r["dtype"] == dtype and r["mode"] == mode and r["group"] == group
            and bucket_for(r["m"]) == bucket_for(m)]
    if not rows:
        return None
    near = min(rows, key=lambda r: (abs(math.log(r["n"] / n)) + abs(math.log(r["k"] / k)), r["tactic"]))
    return near["tactic"]


def rank_by_heuristic(kernels: list[dict], m: int, n: int, sms: int, *, dtype: str | None = None,
                      mode: str | None = None, group: int | None = None, k: int | None = None) -> list[str]:
    """Applicable kernels ordered by the heuristic table: its measured choice for the nearest
    measured shape first (when the table has measured rows), then by the first rule whose m_max
    covers m."""
    rule = next(r for r in heuristic_table()["rules"] if r["m_max"] is None or m <= r["m_max"])
    first = measured_choice(dtype, mode, group, n, k, m) if dtype is not None else None

    def key(k):
        fam_miss = (k["family"] != rule["family"]) + 2 * bool(k["max_m"] and k["max_m"] < m)
        if k["family"] == "gemv":
            return (fam_miss, k["max_m"], k["tile_rows"] != 8 * rule.get("rows_per_warp", 16),
                    k["stages"] != rule.get("stages", 4), k["name"])
        tok, rows = k["tile_tokens"], k["tile_rows"]
        tiles = math.ceil(n / rows) * math.ceil(m / tok)
        want_streamk = rule.get("streamk_below_sm_count", False) and tiles < sms
        sched_miss = (k["scheduler"] == "streamk") != want_streamk
        if rule.get("tokens") == "cover_m":
            size = (math.ceil(m / tok) * tok / m, -rows * tok)
        else:
            size = (-rows * tok, 0)
        return (fam_miss, round(size[0], 2), sched_miss, size[1], k["name"])

    ranked = [k["name"] for k in sorted(kernels, key=key)]
    if first in ranked:
        ranked.remove(first)
        ranked.insert(0, first)
    return ranked


def as_cuda_device(device=None) -> torch.device:
    """A CUDA device with an index from None (the current one), an int, "cuda", "cuda:1" or a
    torch.device."""
    if device is None:
        return torch.device("cuda", torch.cuda.current_device())
    d = torch.device("cuda", device) if isinstance(device, int) and not isinstance(device, bool) \
        else torch.device(device)
    if d.type != "cuda":
        raise ValueError(f"w4a16_build runs on CUDA devices, got {device!r}")
    return d if d.index is not None else torch.device("cuda", torch.cuda.current_device())


def device_key(device: torch.device) -> tuple[str, int]:
    props = torch.cuda.get_device_properties(device)
    return props.name, props.multi_processor_count


def cache_key(device, build_hash, dtype, mode, group, n, k) -> str:
    gpu, sms = device_key(device)
    return make_key(gpu, sms, build_hash, dtype, mode, group, n, k)


_memo: dict[tuple, str] = {}


def clear_memo() -> None:
    _memo.clear()


# --------------------------------------------------------------------- profiler


def choose(timings: dict[str, float]) -> tuple[str, float]:
    """The fastest of the measured (tactic -> seconds); ties go to the name first in order."""
    name = min(sorted(timings), key=lambda t: timings[t])
    return name, timings[name]


def tune(n: int, k: int, dtype: str | torch.dtype = "fp16", mode: str = "groupwise", group_size: int = 128,
         m_values: list[int] | None = None, *, device=None, time_budget_s: float = 120.0,
         progress: bool = True, cache: TuneCache | None = None) -> dict[int, tuple[str, float]]:
    """Time every applicable compiled tactic for each M bucket; store the winners.

    Returns {bucket: (tactic, microseconds)}. A tactic that cannot implement a
    problem or fails is skipped with a logged reason. Each tactic is timed as
    CUDA graph replays (no host overhead in the number) over enough weight
    copies to touch 4x the L2 per pass, so weights are not served from L2.
    Buckets left when the time budget runs out are skipped (logged).
    """
    from . import pack, quantize
    from ._ext import build_info, ext
    from .runner import UnsupportedDeviceError, W4A16Error, _check_device, gemm, pieces, pointers, tactics

    if isinstance(dtype, torch.dtype):
        dtype = {torch.float16: "fp16", torch.bfloat16: "bf16"}.get(dtype, str(dtype))
    if dtype not in ("fp16", "bf16"):
        raise ValueError(f"dtype must be fp16 or bf16, got {dtype!r}")
    dt = {"fp16": torch.float16, "bf16": torch.bfloat16}[dtype]
    if not torch.cuda.is_available():
        raise UnsupportedDeviceError("tune() times the kernels on a GPU: this machine has no CUDA GPU "
                                     "(or PyTorch was built without CUDA)")
    device = as_cuda_device(device)
    sms = _check_device(device)
    group = k if mode == "per_column" else group_size
    m_values = sorted(set(m_values or BUCKETS))
    piece = pieces(1, n, k)[0]
    if piece[3] != n:
        # gemm() runs this layer in pieces of N (2^31 index limit) and selects per piece shape.
        log.info("w4a16_build.tune: N=%d runs in pieces of %d rows; tuning that piece", n, piece[3])
        n = piece[3]
    names = tactics(dtype, mode)
    if not names:
        raise W4A16Error(f"this build has no {dtype} {mode} tactic to tune")

    with torch.cuda.device(device):
        w = torch.randn(n, k, device=device) * 0.02
        q, s, z = quantize(w, None if mode == "per_column" else group_size, mode)
        base = pack(q, s.to(dt), None if z is None else z.to(dt), mode=mode, dtype=dt)
        del w, q, s, z
        nbytes = base.qweight.numel() + base.scales.numel() * 2 * (2 if base.zeros is not None else 1)
        copies = n_copies(nbytes, device)
        import dataclasses

        packs = [base] + [dataclasses.replace(base, qweight=base.qweight.clone(), scales=base.scales.clone(),
                                              zeros=None if base.zeros is None else base.zeros.clone())
                          for _ in range(copies - 1)]
        C = ext()
        results: dict[int, tuple[str, float]] = {}
        t0 = time.monotonic()
        bar = _progress(len(m_values), f"tune {dtype} {mode} g{group} {n}x{k}", progress)
        for m in m_values:
            if time.monotonic() - t0 > time_budget_s:
                log.warning("w4a16_build.tune: time budget %.0f s spent; buckets from M=%d on left untuned",
                            time_budget_s, m)
                break
            x = torch.randn(m, k, device=device, dtype=dt)
            out = torch.empty(m, n, device=device, dtype=dt)
            ptrs = pointers(x, base, out)
            timings = {}
            pm = pieces(m, n, k)[0][1]   # gemm() splits a huge M the same way
            for t in names:
                st = C.can_implement(t, pm, n, k, group, **ptrs, sm_count=sms)
                if st != 0:
                    log.debug("skip %s at M=%d: %s", t, m, C.status_string(st))
                    continue
                try:
                    timings[t] = time_graph(lambda i: gemm(x, packs[i], tactic=t, out=out), copies,
                                            replays=10, repeats=2)
                except Exception as e:  # a failing tactic is skipped, never fatal
                    log.warning("w4a16_build.tune: %s failed at M=%d (%s); skipped", t, m, e)
            if timings:
                tactic, sec = choose(timings)
                results[bucket_for(m)] = (tactic, sec * 1e6)
            bar.update(1)
        bar.close()
        del packs, base
    key = cache_key(device, build_info()["build_hash"], dtype, mode, group, n, k)
    (cache or TuneCache()).update(key, results)
    for kk in [kk for kk in _memo if kk[1:6] == (dtype, mode, group, n, k)]:
        del _memo[kk]
    return results


class _NoBar:
    def update(self, n):
        pass

    def close(self):
        pass


def _progress(total: int, desc: str, enabled: bool):
    if not enabled:
        return _NoBar()
    try:
        from tqdm import tqdm
    except ImportError:
        return _NoBar()
    return tqdm(total=total, desc=desc, unit="M", leave=False)


# -------------------------------------------------------------------- selection


def select_tactic(dtype: str, mode: str, group: int, n: int, k: int, m: int, device: torch.device,
                  applicable) -> str | None:
    """The tactic gemm() runs when none is given. `applicable(name) -> bool`
    checks can_implement for this exact call."""
    b = bucket_for(m)
    mk = (device.index, dtype, mode, group, n, k, b)
    hit = _memo.get(mk)
    if hit is not None:  # a choice holds for every M of its bucket (GEMV max_m >= bucket >= M)
        return hit
    choice = _select_uncached(dtype, mode, group, n, k, m, device, applicable)
    if choice is not None:
        _memo[mk] = choice
    return choice


def remember_choice(dtype, mode, group, n, k, m, device, tactic: str) -> None:
    """Make `tactic` the memoized choice for m's bucket (after the first choice could not launch)."""
    _memo[(device.index, dtype, mode, group, n, k, bucket_for(m))] = tactic


def _fits(name: str, dtype: str, mode: str) -> bool:
    """A cached or tabled name is used only if this build compiled it for this dtype and mode:
    a cache written by another build, or edited by hand, must not run a bf16 kernel on fp16 data."""
    from .runner import _kernels

    info = _kernels().get(name)
    return info is not None and info["dtype"] == dtype and info["mode"] == mode


def ranked_tactics(dtype, mode, group, n, k, m, device) -> list[str]:
    """Every compiled tactic of this dtype and mode, best first: the tuned choice for m's
    bucket (if any), then the heuristic order. Applicability is the caller's to check."""
    from ._ext import build_info
    from .runner import _check_device, _kernels, tactics

    order = []
    tuned = TuneCache().lookup(cache_key(device, build_info()["build_hash"], dtype, mode, group, n, k))
    picked = pick_bucket(tuned, m)
    if picked is not None and _fits(picked[0], dtype, mode):
        order.append(picked[0])
    sms = _check_device(device)
    kernels = [_kernels()[t] for t in tactics(dtype, mode)]
    order += [t for t in rank_by_heuristic(kernels, m, n, sms, dtype=dtype, mode=mode, group=group, k=k)
              if t not in order]
    return order


def _select_uncached(dtype, mode, group, n, k, m, device, applicable):
    from ._ext import build_info
    from .runner import _check_device, _kernels, tactics

    key = cache_key(device, build_info()["build_hash"], dtype, mode, group, n, k)
    cache = TuneCache()
    tuned = cache.lookup(key)
    if not tuned and os.environ.get("W4A16_TUNE") == "1" and not torch.cuda.is_current_stream_capturing():
        log.info("w4a16_build: tuning %s %s g%d N=%d K=%d (W4A16_TUNE=1)", dtype, mode, group, n, k)
        tune(n, k, dtype, mode, group, device=device, progress=False, cache=cache)
        tuned = cache.lookup(key)
    picked = pick_bucket(tuned, m)
    if picked is not None and _fits(picked[0], dtype, mode) and applicable(picked[0]):
        return picked[0]
    if picked is not None and not _fits(picked[0], dtype, mode):
        log.warning("w4a16_build: tuning cache %s names %s for a %s %s problem; ignored", cache.path,
                    picked[0], dtype, mode)
    sms = _check_device(device)
    kernels = [_kernels()[t] for t in tactics(dtype, mode)]
    for name in rank_by_heuristic(kernels, m, n, sms, dtype=dtype, mode=mode, group=group, k=k):
        if applicable(name):
            return name
    return None
