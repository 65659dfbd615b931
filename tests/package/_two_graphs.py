"""Two CUDA graphs of different ops in one process; replay the first after capturing the second.

    python _two_graphs.py FIRST SECOND [--own-streams] [--no-warmup]

FIRST / SECOND: `linear` (48 F.linear, fp16 [1536, 384] weights, x [1, 384]),
`matmul` (48 torch.matmul(x, W[K, N], out=)), `gemm` (48 w4a16_build.gemm over
separately packed g128 weights of the same shape: the GEMV tactic is chosen),
`add` (48 elementwise adds, no cuBLAS). `torch-only` runs need no w4a16_build.
Prints "ok" when the first graph's replay gives the eager result; an illegal
address ends the process with a CUDA error (issue 12, item 4).
"""

import sys

import torch
import torch.nn.functional as F

N, K, LAYERS = 1536, 384, 48


def build(kind, gen):
    x = torch.randn(1, K, device="cuda", dtype=torch.float16, generator=gen)
    outs = [torch.empty(1, N, device="cuda", dtype=torch.float16) for _ in range(LAYERS)]
    if kind in ("linear", "matmul"):
        ws = [torch.randn(N, K, device="cuda", dtype=torch.float16, generator=gen) * 0.05 for _ in range(LAYERS)]
        if kind == "linear":
            def step(i):
                outs[i].copy_(F.linear(x, ws[i]))
        else:
            wt = [w.t().contiguous() for w in ws]

            def step(i):
                torch.matmul(x, wt[i], out=outs[i])
    elif kind == "gemm":
        import w4a16_build

        packs = []
        for _ in range(LAYERS):
            q = torch.randint(-8, 8, (N, K), device="cuda", dtype=torch.int8, generator=gen)
            s = (torch.rand(N, K // 128, device="cuda", generator=gen) * 0.01 + 0.005).half()
            packs.append(w4a16_build.pack(q, s, dtype=torch.float16))

        def step(i):
            w4a16_build.gemm(x, packs[i], out=outs[i])
    elif kind == "add":
        ys = [torch.randn(1, N, device="cuda", dtype=torch.float16, generator=gen) for _ in range(LAYERS)]

        def step(i):
            torch.add(ys[i], 1.0, out=outs[i])
    else:
        raise SystemExit(f"unknown kind {kind}")
    return step, outs


def main(argv):
    first, second = argv[:2]
    own = "--own-streams" in argv
    warm = "--no-warmup" not in argv
    gen = torch.Generator("cuda").manual_seed(0)
    graphs, results, keep = [], [], []
    for kind in (first, second):
        step, outs = build(kind, gen)
        keep.append(step)  # the closure holds the graph's inputs: they must outlive the graph
        if warm:
            for i in range(LAYERS):
                step(i)
            torch.cuda.synchronize()
        expected = [o.clone() for o in outs] if warm else None
        g = torch.cuda.CUDAGraph()
        kw = {"stream": torch.cuda.Stream()} if own else {}
        with torch.cuda.graph(g, **kw):
            for i in range(LAYERS):
                step(i)
        graphs.append(g)
        results.append((outs, expected))
    for o in results[0][0]:
        o.fill_(float("nan"))
    graphs[0].replay()
    torch.cuda.synchronize()
    outs, expected = results[0]
    if expected is not None:
        bad = sum(not torch.equal(a, b) for a, b in zip(outs, expected))
        if bad:
            print(f"MISMATCH: {bad} of {LAYERS} outputs of the first graph differ from eager")
            return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
