"""The profiler: time every applicable tactic of a shape per M bucket and cache where one beats the heuristic.

    w4a16_build.tune(n, k, "fp16", "groupwise", 128)   # time every tactic per M bucket, cache it

Per bucket: every applicable tactic is screened (one short round each, one after another), then
the FINALISTS fastest and the heuristic's own choice (what gemm() runs untuned) are timed again in
interleaved rounds, after an idle pause, so all of them see the same clock and power state (a
large-M call leaves the card power-capped for a moment: back-to-back timing made tune() pick
slower kernels than the heuristic on a down-projection, issue 16). A tuned choice is kept only
where it beats the heuristic's choice by KEEP_MARGIN in those same rounds. A bucket serves every M down to the bucket below it, and a tile that
wins at the bucket's M can lose at a smaller one (measured: bucket 4096's choice at M=3000,
benchmarks/NOTES.md), so a tuned choice is also timed against the heuristic's choice at the
bucket's smallest and middle M (check_points) and kept only where it is not slower at any of them
(bucket 8192 also serves every larger M, which is not checked). Only a kept tuned choice pins the
bucket: where the heuristic's choice is kept, the cache holds an empty tactic and gemm() runs the
heuristic's choice for each M (selection.py). A bucket tune() did not time is not served by another
bucket's choice.
"""

from __future__ import annotations

import logging
import os
import time

import torch

from ._ext import build_info
from .dtypes import TORCH, name_of
from .kernels import (UnsupportedDeviceError, W4A16Error, as_cuda_device, can_implement, card_of, check_device,
                      compute_capability, launch_or_raise, pieces, problem, status_string, tactics)
from . import selection
from .selection import BUCKETS, bucket_for, cache_key, forget_shape
from .timing import SETTLE_S, random_packed, time_graph, time_interleaved, weight_copies
from .tune_cache import TuneCache

log = logging.getLogger("w4a16_build")


FINALISTS = 3          # screened leaders timed again, in the same rounds as the heuristic's choice
KEEP_MARGIN = 0.02     # a tuned choice replaces the heuristic's only when this much faster there
CHECK_TOLERANCE = 0.0  # ... and only when no slower than it (by more than this) at the check points


def choose(timings: dict[str, float]) -> tuple[str, float]:
    """The fastest of the measured (tactic -> seconds); ties go to the name first in order."""
    name = min(sorted(timings), key=lambda t: timings[t])
    return name, timings[name]


def decide_bucket(screen, confirm, applicable: list[str], heuristic: str | None,
                  finalists: int = FINALISTS, margin: float = KEEP_MARGIN) -> tuple[str, float, dict]:
    """One bucket's choice: (tactic, seconds, record).

    screen(names) -> {name: seconds} times each tactic on its own (short); confirm(names) ->
    {name: seconds} times them in interleaved rounds. The `finalists` fastest screened and the
    heuristic's choice are confirmed; the fastest there wins only if it is the heuristic's choice
    or at least `margin` faster than it. record: {"screen", "confirm", "heuristic", "kept"}."""
    screened = screen(applicable)
    if not screened:
        raise W4A16Error("no tactic could be timed")
    leaders = sorted(screened, key=lambda t: (screened[t], t))[:finalists]
    if heuristic is not None and heuristic in screened and heuristic not in leaders:
        leaders.append(heuristic)
    confirmed = confirm(leaders)
    if not confirmed:
        raise W4A16Error("no tactic could be timed again")
    best, sec = choose(confirmed)
    kept = "tuned"
    if heuristic in confirmed and best != heuristic and not sec < confirmed[heuristic] * (1 - margin):
        best, sec, kept = heuristic, confirmed[heuristic], "heuristic"
    elif best == heuristic:
        kept = "heuristic"
    return best, sec, {"screen": screened, "confirm": confirmed, "heuristic": heuristic, "kept": kept}


def check_points(bucket: int) -> list[int]:
    """The other M a bucket serves at which a tuned choice is checked: the smallest (one above the
    bucket below) and the middle one. Buckets of one M (1-16) have none."""
    i = BUCKETS.index(bucket)
    if i == 0 or bucket - BUCKETS[i - 1] <= 1:
        return []
    lo = BUCKETS[i - 1] + 1
    return sorted({lo, (lo + bucket) // 2} - {bucket})


def holds_elsewhere(checks: dict[int, tuple[float, float]], tolerance: float = CHECK_TOLERANCE) -> bool:
    """checks: {m: (tuned seconds, heuristic seconds)} timed in the same rounds. True when the
    tuned choice is no slower than the heuristic's (within `tolerance`) at every one."""
    return all(t <= h * (1 + tolerance) for t, h in checks.values())


def heuristic_choice(dtype: str, mode: str, group: int, n: int, k: int, m: int, sms: int,
                     applicable: list[str], cc: int | None = None, card: str | None = None) -> str | None:
    """What gemm() runs for this call untuned: the heuristic table's first applicable tactic, in
    gemm()'s order for a device of compute capability cc (on Hopper its own kernels before the SM80
    PTX) and short card name `card` (kernels.card_of: which measured rows apply)."""
    ok = set(applicable)
    return next((t for t in selection.heuristic_order(dtype, mode, group, n, k, m, sms, cc, card=card)
                 if t in ok), None)


def tune(n: int, k: int, dtype: str | torch.dtype = "fp16", mode: str = "groupwise", group_size: int = 128,
         m_values: list[int] | None = None, *, device=None, time_budget_s: float = 300.0,
         progress: bool = True, cache: TuneCache | None = None,
         details: dict | None = None) -> dict[int, tuple[str, float]]:
    """Time every applicable compiled tactic for each M bucket; store the winners.

    Returns {bucket: (tactic, microseconds)}: per bucket the fastest tactic where it beats the
    heuristic's choice in the same interleaved rounds, else the heuristic's choice (module
    docstring). A tactic that cannot implement a problem or fails is skipped with a logged
    reason. Each tactic is timed as CUDA graph replays (no host overhead in the number) over
    enough weight copies to touch 4x the L2 per pass, so weights are not served from L2.
    Buckets left when the time budget runs out are skipped (logged): every comparison in
    interleaved rounds starts with about 3 s of warm-up (timing.WARM_S; the confirmation and each
    check point of a bucket), so all 25 buckets of a shape need a few minutes. `details`, if given, gets
    {bucket: decide_bucket's record, times in microseconds, with "checks": {m: {"tuned",
    "heuristic", "heuristic_tactic"}} where a tuned choice was checked at other M of its bucket}.
    The cache stores the tuned choices; a bucket where the heuristic's choice was kept is stored
    with an empty tactic (gemm() then runs the heuristic's choice for each M).
    """
    dtype = name_of(dtype)
    if not torch.cuda.is_available():
        raise UnsupportedDeviceError("tune() times the kernels on a GPU: this machine has no CUDA GPU "
                                     "(or PyTorch was built without CUDA)")
    device = as_cuda_device(device)
    sms = check_device(device)
    cc, card = compute_capability(device), card_of(device)
    group = k if mode == "per_column" else group_size
    m_values = sorted(set(m_values or BUCKETS))
    piece = pieces(1, n, k)[0]
    if piece[3] != n:
        # gemm() runs this layer in pieces of N (2^31 index limit) and selects per piece shape.
        log.info("w4a16_build.tune: N=%d runs in pieces of %d rows; tuning that piece", n, piece[3])
        n = piece[3]
    names = tactics(dtype, mode, device)
    if not names:
        raise W4A16Error(f"this build has no {dtype} {mode} tactic to tune")

    with torch.cuda.device(device):
        packs = weight_copies(random_packed(n, k, dtype, mode, group, device))
        results: dict[int, tuple[str, float]] = {}
        stored: dict[int, tuple[str, float]] = {}
        t0 = time.monotonic()
        bar = _progress(len(m_values), f"tune {dtype} {mode} g{group} {n}x{k}", progress)
        for m in m_values:
            if time.monotonic() - t0 > time_budget_s:
                log.warning("w4a16_build.tune: time budget %.0f s spent; buckets from M=%d on left untuned",
                            time_budget_s, m)
                break
            probs, applicable = _problems(m, n, k, dtype, packs, sms, names, device)
            if not applicable:
                bar.update(1)
                continue
            heur = heuristic_choice(dtype, mode, group, n, k, _rows(m, n, k), sms, applicable, cc, card)
            try:
                tactic, sec, record = decide_bucket(lambda ts: _screen(ts, probs, device, m),
                                                    lambda ts: _confirm(ts, probs, device, m),
                                                    applicable, heur)
            except W4A16Error:
                bar.update(1)
                continue
            # Checked against the heuristic's choice where it was timed here too (one that could
            # not run at the bucket's M is not what gemm() runs there).
            if record["kept"] == "tuned" and heur in record["confirm"]:
                checks = _check_elsewhere(tactic, bucket_for(m), n, k, dtype, mode, group, packs, sms,
                                          names, device)
                record["checks"] = checks
                if not holds_elsewhere({c: (v["tuned"], v["heuristic"]) for c, v in checks.items()}):
                    tactic, sec = heur, record["confirm"][heur]
                    record["kept"] = "heuristic (slower elsewhere)"
            results[bucket_for(m)] = (tactic, sec * 1e6)
            stored[bucket_for(m)] = (tactic if record["kept"] == "tuned" else "", sec * 1e6)
            if details is not None:
                details[bucket_for(m)] = _in_us(record)
            bar.update(1)
        bar.close()
        del packs
    key = cache_key(device, build_info()["build_hash"], dtype, mode, group, n, k)
    (cache or TuneCache()).update(key, stored)
    forget_shape(dtype, mode, group, n, k)
    return results


def _rows(m: int, n: int, k: int) -> int:
    """The M of the first piece gemm() runs for m rows (it splits a huge M the same way)."""
    return pieces(m, n, k)[0][1]


def _problems(m, n, k, dtype, packs, sms, names, device):
    """Problems of m rows (one per weight copy) and the tactics that can implement them."""
    pm = _rows(m, n, k)
    x = torch.randn(pm, k, device=device, dtype=TORCH[dtype])
    out = torch.empty(pm, n, device=device, dtype=TORCH[dtype])
    probs = [problem(x, p, out, sms=sms) for p in packs]
    applicable = []
    for t in names:
        st = can_implement(t, probs[0])
        if st != 0:
            log.debug("skip %s at M=%d: %s", t, m, status_string(st))
            continue
        applicable.append(t)
    return probs, applicable


def _runner(t, probs, device):
    return lambda i: launch_or_raise(t, probs[i], device)


def _screen(ts, probs, device, m):
    """Each tactic timed on its own, one after another (short)."""
    timings = {}
    time.sleep(SETTLE_S)
    for t in ts:
        try:
            timings[t] = time_graph(_runner(t, probs, device), len(probs), replays=10, repeats=1)
        except Exception as e:  # a failing tactic is skipped, never fatal
            log.warning("w4a16_build.tune: %s failed at M=%d (%s); skipped", t, m, e)
    return timings


def _confirm(ts, probs, device, m):
    """The tactics timed again in interleaved rounds after an idle pause."""
    time.sleep(SETTLE_S)
    try:
        return dict(zip(ts, time_interleaved([(_runner(t, probs, device), len(probs)) for t in ts],
                                             replays=10, repeats=3)))
    except Exception as e:  # one of them failed now: time them one by one instead
        log.warning("w4a16_build.tune: interleaved timing failed at M=%d (%s); timing one by one", m, e)
        return _screen(ts, probs, device, m)


def _check_elsewhere(tactic, bucket, n, k, dtype, mode, group, packs, sms, names, device) -> dict:
    """{m: {"tuned", "heuristic" (seconds), "heuristic_tactic"}} at the bucket's check points: the
    tuned choice and what gemm() runs there untuned, in the same interleaved rounds. A point where
    the tuned choice cannot run is left out (gemm() runs the heuristic's choice there), and so is
    one where the heuristic's choice is the tuned one, where there is none, or where either
    could not be timed."""
    checks = {}
    cc, card = compute_capability(device), card_of(device)
    for cm in check_points(bucket):
        probs, applicable = _problems(cm, n, k, dtype, packs, sms, names, device)
        heur = heuristic_choice(dtype, mode, group, n, k, _rows(cm, n, k), sms, applicable, cc, card)
        if heur is None or heur == tactic or tactic not in applicable:
            continue
        timed = _confirm([tactic, heur], probs, device, cm)
        if tactic in timed and heur in timed:
            checks[cm] = {"tuned": timed[tactic], "heuristic": timed[heur], "heuristic_tactic": heur}
    return checks


def _in_us(record: dict) -> dict:
    """decide_bucket's record (and its checks) with seconds turned into microseconds."""
    out = {**record, "screen": {t: v * 1e6 for t, v in record["screen"].items()},
           "confirm": {t: v * 1e6 for t, v in record["confirm"].items()}}
    if "checks" in record:
        out["checks"] = {m: {**c, "tuned": c["tuned"] * 1e6, "heuristic": c["heuristic"] * 1e6}
                         for m, c in record["checks"].items()}
    return out


_tuned_here: set[tuple] = set()


def tune_if_requested(dtype: str, mode: str, group: int, n: int, k: int, device: torch.device) -> None:
    """W4A16_TUNE=1: tune a shape the cache does not hold yet, before its first selection (never
    during CUDA graph capture)."""
    if os.environ.get("W4A16_TUNE") != "1" or torch.cuda.is_current_stream_capturing():
        return
    if selection.tuned_choices_memoized(dtype, mode, group, n, k, device):
        return
    if (device.index, dtype, mode, group, n, k) in _tuned_here:
        return                  # tuned in this process already, and nothing could be stored
    _tuned_here.add((device.index, dtype, mode, group, n, k))
    log.info("w4a16_build: tuning %s %s g%d N=%d K=%d (W4A16_TUNE=1)", dtype, mode, group, n, k)
    tune(n, k, dtype, mode, group, device=device, progress=False)


def select_tactic(dtype: str, mode: str, group: int, n: int, k: int, m: int, device: torch.device,
                  applicable) -> str | None:
    """What gemm() runs when no tactic is given: selection.select_tactic, after tuning the shape
    first where W4A16_TUNE=1 asks and the choice is not memoized yet."""
    if selection.memoized(dtype, mode, group, n, k, m, device) is None:
        tune_if_requested(dtype, mode, group, n, k, device)
    return selection.select_tactic(dtype, mode, group, n, k, m, device, applicable)


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
