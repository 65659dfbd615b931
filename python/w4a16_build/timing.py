"""Kernel timing without host overhead, shared by the benchmark and the tuner.

The weight-copy rotation lives here only: `weight_copies()` makes the copies of a random packed
weight (`random_packed()`) that one timed pass rotates over. One call per weight copy is captured in a CUDA graph (so no launch or Python
overhead is in the number), the graph is replayed, CUDA events time the
replays. One timer alone averages its rounds after a discarded one (`time_graph`); timers compared with each other
are interleaved in a balanced order and averaged (`time_interleaved`). Rotating over copies that
together exceed the L2 keeps the weights cold (benchmarks/README.md).
"""

from __future__ import annotations

import dataclasses
import math

import torch

from .dtypes import TORCH
from .packing import PackedWeight, pack
from .quant import quantize

# Idle before measurements that are compared: a large-M call leaves the card power-capped at a
# lower SM clock for a moment (benchmarks/NOTES.md).
SETTLE_S = 0.3
# Busy time the interleaved timers run, alternating, before any round is kept (time_interleaved).
# On an H200 at M >= 1500 the two orders of a pair differed by up to 7% after one warm-up round,
# 2-3% after 1 s, <= 0.5% after 3 s (one trial per order; benchmarks/NOTES.md, "Timing order", eighth session).
WARM_S = 3.0
WARM_PASSES_MAX = 200     # ... or this many passes over the timers, whichever comes first


def n_copies(bytes_per_copy: int, device=None) -> int:
    """Copies whose total is at least 4x the L2, at least 2."""
    l2 = torch.cuda.get_device_properties(device or torch.cuda.current_device()).L2_cache_size
    return max(2, math.ceil(4 * l2 / max(bytes_per_copy, 1)))


def weight_bytes(n: int, k: int, mode: str, group: int) -> int:
    """Bytes one call reads of a packed weight: 4-bit codes, scales (and zeros)."""
    groups = 1 if mode == "per_column" else k // group
    per_group = 2 * (2 if mode == "groupwise_zero" else 1)
    return n * k // 2 + n * groups * per_group


def random_packed(n: int, k: int, dtype: str, mode: str, group: int, device=None) -> PackedWeight:
    """A random weight (normal, std 0.02), quantized and packed: what timing runs on."""
    dt = TORCH[dtype]
    w = torch.randn(n, k, device=device or "cuda") * 0.02
    q, s, z = quantize(w, None if mode == "per_column" else group, mode)
    del w
    return pack(q, s.to(dt), None if z is None else z.to(dt), mode=mode, dtype=dt)


def weight_copies(base: PackedWeight) -> list[PackedWeight]:
    """`base` and clones of it: together at least 4x the L2 of its device (n_copies), so a pass
    over them reads every weight byte from memory, not from L2."""
    nbytes = weight_bytes(base.n, base.k, base.mode, base.group_size)
    copies = n_copies(nbytes, base.device)
    return [base] + [dataclasses.replace(base, qweight=base.qweight.clone(), scales=base.scales.clone(),
                                         zeros=None if base.zeros is None else base.zeros.clone())
                     for _ in range(copies - 1)]


class GraphTimer:
    """One call per weight copy captured in a CUDA graph; `round()` times `replays` replays.

    Rounds of several timers can be interleaved (see `time_interleaved`) so that both see the same clock
    and power state of the card."""

    def __init__(self, fn_per_copy, copies: int):
        self.copies = copies
        for i in range(copies):  # warm-up (workspace, function attributes, selection) outside capture
            fn_per_copy(i)
        torch.cuda.synchronize()
        self.graph = torch.cuda.CUDAGraph()
        s = torch.cuda.Stream()
        s.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(s):
            with torch.cuda.graph(self.graph, stream=s):
                for i in range(copies):
                    fn_per_copy(i)
        torch.cuda.current_stream().wait_stream(s)
        self.graph.replay()
        torch.cuda.synchronize()
        self.start = torch.cuda.Event(enable_timing=True)
        self.end = torch.cuda.Event(enable_timing=True)

    def round(self, replays: int = 20) -> float:
        """Seconds per call, over `replays` replays of the graph."""
        self.start.record()
        for _ in range(replays):
            self.graph.replay()
        self.end.record()
        self.end.synchronize()
        return self.start.elapsed_time(self.end) / 1e3 / (replays * self.copies)


def time_graph(fn_per_copy, copies: int, replays: int = 20, repeats: int = 3) -> float:
    """Seconds per call of fn_per_copy(i), i over the copies: the mean of `repeats` rounds after
    one discarded round (the card may come out of an idle pause at its boost clock: see
    time_interleaved). The mean, as time_interleaved reports, so that the bench's ranked rows
    (timed here) and its reported row (timed interleaved) are the same statistic. Costs
    1 + repeats rounds."""
    timer = GraphTimer(fn_per_copy, copies)
    timer.round(replays)
    rounds = max(1, repeats)
    mean = sum(timer.round(replays) for _ in range(rounds)) / rounds
    del timer
    return mean


def balanced_order(n: int) -> list[int]:
    """The order of the kept rounds of n interleaved timers, after warm-up passes that end with
    timer n - 1: every ordered pair (i, j), i == j included, appears equally often as "j right after
    i" (so whatever one tactic leaves behind for the next, each timer gets the same share), and the
    sequence reads the same backwards (so each timer's rounds sit at the same mean place, and a
    steady drift cancels). Built as an Euler circuit of the complete directed graph with loops
    (each pair once), starting with the loop at n - 1, followed by its reverse: 2 n^2 rounds."""
    if n <= 0:
        return []
    last = n - 1
    out_edges = {v: [v] + [w for w in range(n) if w != v] for v in range(n)}
    stack, circuit = [last], []
    while stack:                              # Hierholzer's algorithm
        v = stack[-1]
        if out_edges[v]:
            stack.append(out_edges[v].pop(0))
        else:
            circuit.append(stack.pop())
    circuit.reverse()                         # vertices c0 .. c_{n^2}, c0 == c_{n^2} == last
    cyc = circuit[:-1]
    i = next(i for i in range(len(cyc)) if cyc[i] == last and cyc[(i + 1) % len(cyc)] == last)
    first_half = [cyc[(i + 1 + k) % len(cyc)] for k in range(len(cyc))]   # starts with the loop's end
    return first_half + first_half[::-1]


def time_interleaved(timed: list, replays: int = 20, repeats: int = 3, warm_s: float | None = None) -> list[float]:
    """Seconds per call of each (fn_per_copy, copies) in `timed`, their rounds interleaved so that
    ratios between them are not skewed by the card's clock changing between measurements (a
    large-M call leaves it power-capped for a moment).

    The timers first run, alternating, until they have been busy `warm_s` (WARM_S) seconds
    together (at most WARM_PASSES_MAX passes), and those rounds are discarded; then the kept rounds
    follow `balanced_order` (repeated until each timer has at least `repeats` rounds) and are
    averaged per timer. Measured on an H200 (benchmarks/NOTES.md, "Timing order"): the same two
    tactics timed in both orders of the list differed by 5-15% at M >= 1500 with a fixed order and
    the best round kept; by up to 7% with one warm-up round and whole rotations (a, b / b, a) or
    the balanced order; by 2-3% after 1 s of warm-up and by at most 0.5% after 3 s. The card's
    clock settles over seconds after an idle pause; rounds kept before it has settled favour
    whichever timer holds the luckier places. In the balanced order each timer follows each timer
    (itself included) equally often and sits at the same mean place, so what remains of a drift
    or of one tactic's effect on the next cancels.

    Cost: the warm-up (about WARM_S of GPU time), then 2 n^2 * ceil(repeats / (2 n)) timer rounds
    of `replays` graph replays each (repeats = 3: n = 1: 4, 2: 8, 3: 18, 4: 32)."""
    timers = [GraphTimer(fn, copies) for fn, copies in timed]
    n = len(timers)
    if n == 0:
        return []
    warm_s = WARM_S if warm_s is None else warm_s
    busy = 0.0
    for _ in range(WARM_PASSES_MAX):          # warm-up passes: bring the card to its loaded clock
        for timer in timers:
            busy += timer.round(replays) * replays * timer.copies
        if busy >= warm_s:
            break
    order = balanced_order(n) * math.ceil(max(1, repeats) / (2 * n))
    total = [0.0] * n
    for i in order:
        total[i] += timers[i].round(replays)
    del timers
    per_timer = len(order) // n
    return [t / per_timer for t in total]
