"""One large layer at several M, in its own process (a crash must not take pytest with it).

    python _large_layer.py N K MODE GROUP M[,M...]

Prints one line per M: "ok M ..." when the output matches the fp32 reference on
sampled output slabs (first, middle, last rows of the weight; first and last
tokens), "refused M <message>" when gemm() refused the problem with an exception.
Exits non-zero on a wrong answer.
"""

import sys

import torch

import w4a16_build

from _weights import errors, random_weight, reference, TOL, WORST


def main(argv):
    n, k, mode, group = int(argv[0]), int(argv[1]), argv[2], int(argv[3])
    ms = [int(v) for v in argv[4].split(",")]
    gen = torch.Generator("cuda").manual_seed(n * 31 + k)
    w = random_weight(n, k, mode, None if mode == "per_column" else group, torch.float16, gen)
    torch.cuda.synchronize()
    slab = 4096
    mid = (n // 2) // 8 * 8
    slabs = sorted({(0, min(slab, n)), (mid, min(mid + slab, n)), (max(0, n - slab), n)})
    bad = 0
    for m in ms:
        x = torch.randn(m, k, device="cuda", dtype=torch.float16, generator=gen)
        try:
            out = w4a16_build.gemm(x, w.packed)
        except (ValueError, RuntimeError) as e:
            print(f"refused {m} {type(e).__name__}: {e}")
            continue
        torch.cuda.synchronize()
        toks = sorted({0, m - 1} | set(range(0, min(m, 64))) | set(range(max(0, m - 64), m)))
        idx = torch.tensor(toks, device="cuda")
        worst_rel = worst_el = 0.0
        for r0, r1 in slabs:
            ref = reference(x[idx], w, rows=slice(r0, r1))
            rel, el = errors(out[idx, r0:r1], ref)
            worst_rel, worst_el = max(worst_rel, rel), max(worst_el, el)
        ok = worst_rel < TOL["fp16"] and worst_el < WORST["fp16"]
        bad += not ok
        print(f"{'ok' if ok else 'WRONG'} {m} rel {worst_rel:.2e} worst {worst_el:.2e}")
        del out, x
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
