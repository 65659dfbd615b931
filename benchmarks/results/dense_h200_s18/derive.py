import json, math
proj = json.load(open('benchmarks/results/dense_h200_s18/projected_points.json'))
pts = [dict(p, meas='proj') for p in proj]
for r in json.load(open('benchmarks/results/dense_h200_s18/dev_fp16.json'))['rows']:
    pts.append(dict(k=r['k'], n=r['n'], m=r['m'], cub=r['cublas_us'], fused=r['auto_us'], dense=r['dense_us'], src='dev', meas='same-round'))
def gm(xs): return math.exp(sum(map(math.log, xs)) / len(xs))
def rule_A(p, R=32, M0=1537, M1=3100, mink=1024, minn=1024, maxnk=None):
    r = p['m'] % 128
    return (M0 <= p['m'] <= M1 and 1 <= r <= R and p['k'] >= mink and p['n'] >= minn and (maxnk is None or p['n']*p['k'] <= maxnk))
def evaluate(name, f):
    print(name)
    for M in sorted({p['m'] for p in pts}):
        P = [p for p in pts if p['m'] == M]
        fired = [p for p in P if f(p)]
        if not fired and M not in (1500, 3000, 4096): pass
        ch = [p['dense'] if f(p) else p['fused'] for p in P]
        worse = [p for p in fired if p['dense'] > p['fused'] * 1.02]
        print(f"  M={M} n={len(P)} fired {len(fired)} fused {gm([p['cub']/p['fused'] for p in P]):.3f} -> {gm([p['cub']/c for p,c in zip(P,ch)]):.3f}"
              f" worse>2%: {len(worse)} worst ratio {min([p['fused']/p['dense'] for p in fired], default=1):.3f} min chosen {min(p['cub']/c for p,c in zip(P,ch)):.3f} (was {min(p['cub']/p['fused'] for p in P):.3f})")
evaluate("A R=32", rule_A)
evaluate("B R=16", lambda p: rule_A(p, R=16))
evaluate("C R=32 maxnk 60M", lambda p: rule_A(p, maxnk=60e6))
evaluate("D R=32 no min", lambda p: rule_A(p, mink=0, minn=0))
evaluate("E R=48", lambda p: rule_A(p, R=48))
