"""Random valid problems against an fp32 reference, eager and inside CUDA graphs (issue 12).

    python -m pytest -q tests/package/test_fuzz_gpu.py          # W4A16_FUZZ_CASES cases (default 2000)
    python tests/package/test_fuzz_gpu.py --case 1234           # re-run one case, printing it

Every case is a function of (SEED, index) alone, so a failure printed by the
test re-runs exactly with --case. Sizes are log-uniform (K a multiple of 64 in
64..32768, N a multiple of 8 in 8..65536, M in 1..5000 and mostly odd), every
mode, group 64 / 128 / K, fp16 and bf16, with and without bias; a quarter run
inside a CUDA graph. A few fixed huge cases cross the 2^31-nibble and
2^31-element limits. A case passes when the output matches the reference, or
when gemm() refused it with an exception and no compiled tactic can run it.
"""

from __future__ import annotations

import math
import os
import random
import sys
import time
from pathlib import Path

import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import w4a16_build  # noqa: E402
from _weights import DT, errors, random_weight, reference, TOL, WORST  # noqa: E402

pytestmark = pytest.mark.gpu
SEED = 20261127
MODES = ("per_column", "groupwise", "groupwise_zero")
# (n, k, m, mode, group) at fixed indices: huge N, huge padded weight, huge M x K.
HUGE = {
    97: (524280, 4096, 33, "groupwise", 128),
    501: (4194296, 512, 1, "groupwise_zero", 64),
    1003: (11184808, 192, 5, "per_column", None),
    1501: (64, 32768, 66000, "groupwise", 128),
}
WORK_CAP = 3e11          # 2*M*N*K above this is scaled down in M (keeps the reference cheap)
WEIGHT_CAP = 1 << 28     # N*K above this is scaled down in N, except the HUGE cases


def log_uniform(rng: random.Random, lo: int, hi: int) -> int:
    return int(round(math.exp(rng.uniform(math.log(lo), math.log(hi)))))


def case(i: int) -> dict:
    rng = random.Random(SEED * 1_000_003 + i)
    dtype = rng.choice(("fp16", "bf16"))
    mode = rng.choice(MODES)
    if i in HUGE:
        n, k, m, mode, group = HUGE[i]
    else:
        k = 64 * log_uniform(rng, 1, 512)
        n = 8 * log_uniform(rng, 1, 8192)
        m = log_uniform(rng, 1, 5000)
        if m > 2 and rng.random() < 0.7:
            m |= 1                                    # real batches are odd as often as not
        groups = [g for g in (64, 128, k) if k % g == 0]
        group = None if mode == "per_column" else rng.choice(groups)
        while n * k > WEIGHT_CAP and n > 8:
            n = max(8, n // 2 // 8 * 8)
        while 2.0 * m * n * k > WORK_CAP and m > 1:
            m = max(1, m // 2)
    return dict(index=i, dtype=dtype, mode=mode, n=n, k=k, m=m, group=group,
                bias=rng.random() < 0.5, graph=rng.random() < 0.25 and i not in HUGE,
                out=rng.random() < 0.5, lead=rng.random() < 0.2 and m % 3 == 0)


def nobody_can_run(c: dict) -> bool:
    from w4a16_build._ext import ext

    C = ext()
    g = c["k"] if c["mode"] == "per_column" else c["group"]
    aligned = dict(x=1 << 12, w=2 << 12, scales=3 << 12, zeros=4 << 12, out=5 << 12)
    # gemm() splits huge problems into pieces of at most 2^31 elements; ask about one piece.
    piece = C.Problem(m=min(c["m"], 1024), n=min(c["n"], 1 << 16), k=c["k"], group_size=g, **aligned)
    return all(C.can_implement(t, piece) != 0 for t in w4a16_build.tactics(c["dtype"], c["mode"]))


def run_case(c: dict) -> tuple[str, str]:
    """('ok' | 'refused' | 'FAIL', detail)."""
    dt = DT[c["dtype"]]
    gen = torch.Generator("cuda").manual_seed(SEED + c["index"])
    w = random_weight(c["n"], c["k"], c["mode"], c["group"], dt, gen)
    m, k, n = c["m"], c["k"], c["n"]
    shape = (3, m // 3, k) if c["lead"] else (m, k)
    x = torch.randn(shape, device="cuda", dtype=dt, generator=gen)
    bias = torch.randn(n, device="cuda", dtype=dt, generator=gen) if c["bias"] else None
    out = torch.full(shape[:-1] + (n,), float("nan"), device="cuda", dtype=dt) if c["out"] or c["graph"] else None
    try:
        if c["graph"]:
            w4a16_build.gemm(x, w.packed, bias, out=out)          # selection + warm-up outside capture
            out.fill_(float("nan"))
            g = torch.cuda.CUDAGraph()
            s = torch.cuda.Stream()
            s.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(s), torch.cuda.graph(g, stream=s):
                w4a16_build.gemm(x, w.packed, bias, out=out)
            torch.cuda.current_stream().wait_stream(s)
            g.replay()
            y = out
        else:
            y = w4a16_build.gemm(x, w.packed, bias, out=out)
        torch.cuda.synchronize()
    except (ValueError, TypeError, w4a16_build.W4A16Error) as e:
        if nobody_can_run(c):
            return "refused", f"{type(e).__name__}: {e}"
        return "FAIL", f"refused although a compiled tactic can run it: {type(e).__name__}: {e}"
    if y is None or tuple(y.shape) != shape[:-1] + (n,):
        return "FAIL", f"output shape {None if y is None else tuple(y.shape)}"
    y2 = y.reshape(m, n)
    x2 = x.reshape(m, k)
    if n * m > (1 << 26) or n > 65536 or m * k > (1 << 28):   # sample rows and tokens of large ones
        toks = torch.tensor(sorted({0, m - 1, m // 2} | set(range(min(m, 16)))), device="cuda")
        slabs = [(0, min(n, 4096)), (max(0, n - 4096), n)]
        worst = (0.0, 0.0)
        for r0, r1 in slabs:
            ref = reference(x2[toks], w, bias, rows=slice(r0, r1))
            e = errors(y2[toks, r0:r1], ref)
            worst = (max(worst[0], e[0]), max(worst[1], e[1]))
        rel, el = worst
    else:
        rel, el = errors(y2, reference(x2, w, bias))
    ok = rel < TOL[c["dtype"]] and el < WORST[c["dtype"]]
    return ("ok" if ok else "FAIL"), f"rel {rel:.2e} worst {el:.2e}"


def describe(c: dict) -> str:
    return (f"case {c['index']}: {c['dtype']} {c['mode']} g{c['group']} M={c['m']} N={c['n']} K={c['k']} "
            f"bias={c['bias']} graph={c['graph']} out={c['out']} lead={c['lead']}")


def run_many(indices, log=print) -> tuple[list[str], int, int]:
    failures, refused, done = [], 0, 0
    have = {(k["dtype"], k["mode"]) for k in w4a16_build.list_kernels()}
    for i in indices:
        c = case(i)
        if (c["dtype"], c["mode"]) not in have:
            continue
        try:
            status, detail = run_case(c)
        except torch.cuda.OutOfMemoryError:
            torch.cuda.empty_cache()
            log(f"skipped (out of GPU memory) {describe(c)}")
            continue
        done += 1
        if status == "refused":
            refused += 1
            log(f"refused {describe(c)}: {detail}")
        elif status != "ok":
            failures.append(f"{describe(c)}: {detail}  (re-run: python tests/package/test_fuzz_gpu.py --case {i})")
            log("FAIL " + failures[-1])
    return failures, refused, done


def test_fuzz_random_valid_problems():
    n_cases = int(os.environ.get("W4A16_FUZZ_CASES", "2000"))
    t0 = time.monotonic()
    failures, refused, done = run_many(range(n_cases))
    print(f"fuzz: {done} cases in {time.monotonic() - t0:.0f} s, {len(failures)} failed, {refused} refused")
    assert done > 0, "no case matched a compiled (dtype, mode)"
    assert not failures, f"{len(failures)} of {done} cases failed:\n" + "\n".join(failures[:20])


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--case":
        c = case(int(sys.argv[2]))
        print(describe(c))
        print(*run_case(c))
    else:
        n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
        f, r, d = run_many(range(n))
        print(f"{d - len(f) - r} passed, {len(f)} failed, {r} refused")
        sys.exit(1 if f else 0)
