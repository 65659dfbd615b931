"""Summary of a ws_probe.cu A/B run (lines `DT m=M cublas=T pick=P | s:t0/t1/... | best ...`):
per layer and M the time of each form at the launcher's split and at its fastest split, the
geomean speed-up over fp16 cuBLAS of each form at both, and per split the geomean of the first
form's time over each form's (above 1: faster than the first form).

    python ab_summary.py ab6_fp16.txt
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # benchmarks/
from ws_probe_lines import geomean as geo, points  # noqa: E402


def rows(path):
    pts = points(path)
    for p in pts:
        if p.wrong:
            raise SystemExit(f"a wrong result in {path}: {(p.k, p.n)} M={p.m} split {p.wrong[0][0]}")
    names = pts[-1].forms if pts else None
    return names, [((p.k, p.n), p.m, p.cublas, p.pick, {s: [t[f] for f in names] for s, t in p.times.items()})
                   for p in pts]


if __name__ == "__main__":
    names, data = rows(sys.argv[1])
    at_pick = {n: [] for n in names}
    at_best = {n: [] for n in names}
    for (k, n), m, cublas, pick, t in data:
        best = [min(t[s][i] for s in t) for i in range(len(names))]
        print(f"{k}x{n} M={m} pick={pick} | at pick " + " ".join(f"{nm} {t[pick][i]:.2f}" for i, nm in enumerate(names))
              + " | fastest split " + " ".join(f"{b:.2f}" for b in best))
        for i, nm in enumerate(names):
            at_pick[nm].append(cublas / t[pick][i])
            at_best[nm].append(cublas / best[i])
    for nm in names:
        print(f"{nm}: geomean over fp16 cuBLAS {geo(at_pick[nm]):.3f} at the launcher's split, "
              f"{geo(at_best[nm]):.3f} at the fastest ({len(at_pick[nm])} points)")
    for s in (1, 2, 3, 4, 6, 8, 12, 16):
        r = [t[s] for *_, t in data if s in t]
        if r:
            print(f"split {s:2d}: {names[0]} / form, geomean: "
                  + " ".join(f"{nm} {geo([x[0] / x[i] for x in r]):.3f}" for i, nm in enumerate(names)))
