"""Kernel timing without host overhead, shared by the benchmark and the tuner.

One call per weight copy is captured in a CUDA graph (so no launch or Python
overhead is in the number), the graph is replayed, CUDA events time the
replays, and the best of `repeats` rounds is kept. Rotating over copies that
together exceed the L2 keeps the weights cold (shared/BENCHMARKING.md).
"""

from __future__ import annotations

import math

import torch


def n_copies(bytes_per_copy: int, device=None) -> int:
    """Copies whose total is at least 4x the L2, at least 2."""
    l2 = torch.cuda.get_device_properties(device or torch.cuda.current_device()).L2_cache_size
    return max(2, math.ceil(4 * l2 / max(bytes_per_copy, 1)))


def time_graph(fn_per_copy, copies: int, replays: int = 20, repeats: int = 3) -> float:
    """Seconds per call of fn_per_copy(i), i over the copies."""
    for i in range(copies):  # warm-up (workspace, function attributes, selection) outside capture
        fn_per_copy(i)
    torch.cuda.synchronize()
    g = torch.cuda.CUDAGraph()
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        with torch.cuda.graph(g, stream=s):
            for i in range(copies):
                fn_per_copy(i)
    torch.cuda.current_stream().wait_stream(s)
    g.replay()
    torch.cuda.synchronize()
    best = math.inf
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    for _ in range(repeats):
        start.record()
        for _ in range(replays):
            g.replay()
        end.record()
        end.synchronize()
        best = min(best, start.elapsed_time(end) / 1e3 / (replays * copies))
    del g
    return best
