"""The skinny cluster forms' split counts (probe3_sk_*.txt): their launcher's choice (`plan=`) against
the fastest, and the GEMV's cost model (fit.py) applied to them, on the development and held-out
layers (benchmarks/NOTES.md, "Twentieth session": not changed).

    python skinny_check.py probe3_sk_dev.txt probe3_sk_held.txt
"""
import itertools
import math
import sys

from fit import CAP, parse


def model(share, cta_cost):
    def choose(k, n, var, m, rg, d):
        best = None
        for s in sorted(d):
            o = min(d[1][1] // 132 if 1 in d else 2, 4)     # CTAs per SM: the calculator's answer at s = 1
            fits = [p for p in range(1, o + 1) if CAP[p][s] >= rg]
            p, waves = (fits[0], 1) if fits else (o, math.ceil(rg / d[s][1]))
            t = waves * (math.ceil(k // 64 / s) + cta_cost) * share[p]
            if best is None or t < best[0] - 1e-9:
                best = (t, s)
        return best[1]
    return choose


def score(rows, choose, label=None):
    by = {}
    for k, n, var, m, plan, rg, d in rows:
        s = plan if choose is None else choose(k, n, var, m, rg, d)
        fastest = min(d[x][0] for x in d)
        by.setdefault(var, []).append((d[s][0] / fastest, d[plan][0] / d[s][0]))
    if label:
        print(label)
        for var, v in by.items():
            g = lambda i: math.exp(sum(math.log(x[i]) for x in v) / len(v))  # noqa: E731
            print(f"  {var:17s} {len(v):3d} points: chosen/fastest {g(0):.3f} (worst {max(x[0] for x in v):.2f}); "
                  f"launcher's/chosen {g(1):.3f} (single points {min(x[1] for x in v):.2f}-{max(x[1] for x in v):.2f})")
    allr = [x for v in by.values() for x in v]
    return math.exp(sum(math.log(x[0]) for x in allr) / len(allr))


def main(dev_path, held_path):
    dev, held = parse(dev_path), parse(held_path)
    print(f"development, the launcher: {score(dev, None, 'development, the launcher'):.4f} overall")
    grid = sorted((score(dev, model({1: 1.0, 2: g2, 3: g3, 4: g3 * 1.2}, c0)), g2, g3, c0)
                  for g2, g3, c0 in itertools.product([1.0, 1.2, 1.4, 1.6, 1.8, 2.0], [1.8, 2.0, 2.4, 3.0], [0, 2, 4, 6, 8]))
    print("development fit, best 3 (overall geomean chosen/fastest, share p=2, p=3, cost per CTA):", grid[:3])
    gemv = model({1: 1.0, 2: 1.4, 3: 2.0, 4: 2.4}, 4)
    score(dev, gemv, "development, the GEMV's constants")
    score(held, None, "held out, the launcher")
    score(held, gemv, "held out, the GEMV's constants")


if __name__ == "__main__":
    main(*sys.argv[1:3])
