"""Kernel timing without host overhead, shared by the benchmark and the tuner.

The weight-copy rotation lives here only: `weight_copies()` makes the copies of a random packed
weight (`random_packed()`) that one timed pass rotates over. One call per weight copy is captured in a CUDA graph (so no launch or Python
overhead is in the number), the graph is replayed, CUDA events time the
replays. One timer alone keeps its best round (`time_graph`); timers compared with each other
are interleaved in rotating order and averaged (`time_interleaved`). Rotating over copies that
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


def time_interleaved(timed: list, replays: int = 20, repeats: int = 3) -> list[float]:
    """Seconds per call of each (fn_per_copy, copies) in `timed`, their rounds interleaved so that
    ratios between them are not skewed by the card's clock changing between measurements (a
    large-M call leaves it power-capped for a moment).

    One round of every timer is run first and discarded, then whole rotations of the order
    (a, b, c / b, c, a / c, a, b; at least `repeats` rounds) are kept and averaged per timer. On
    an H200 the clock falls for a while after an idle pause: with a fixed order and the best round
    kept, the first timer kept its earliest, fastest round and came out 5-15% faster than the same
    tactic timed second at M >= 1500 (benchmarks/NOTES.md, "Timing order"). Over whole rotations
    each timer holds each place once, so a steady drift cancels in the mean. The warm-up is one
    round per timer, not a fixed time: a boost that outlasts it leaves a smaller bias.

    Cost: n * (1 + n * ceil(repeats / n)) timer rounds of `replays` graph replays each (repeats =
    3: n = 2: 10, 3: 12, 4: 20, 5: 30; the fixed order before took 3 * n: 6, 9, 12, 15)."""
    timers = [GraphTimer(fn, copies) for fn, copies in timed]
    n = len(timers)
    if n == 0:
        return []
    for timer in timers:                      # warm-up pass: brings the card towards its loaded clock
        timer.round(replays)
    rounds = n * math.ceil(max(1, repeats) / n)
    total = [0.0] * n
    for r in range(rounds):
        for j in range(n):
            i = (r + j) % n
            total[i] += timers[i].round(replays)
    del timers
    return [t / rounds for t in total]
