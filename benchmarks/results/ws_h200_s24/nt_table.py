"""Per layer and M: time at the launcher's split for each token tile (NT) of an NT-sweep probe file,
and each NT's ratio to NT=8 (m > 24) or NT=4 (m <= 24)."""
import re, math, sys, collections
d = collections.defaultdict(dict)
dt = 'fp16'
for line in open(sys.argv[1]):
    m = re.match(r'== (\w+) K=(\d+) N=(\d+).*NT=(\d+)', line)
    if m:
        dt, cur, nt = m[1], (int(m[2]), int(m[3])), int(m[4]); continue
    m = re.match(r'\w+ m=(\d+) cublas=([\d.]+) pick=(\d+) \|(.*?)\| best', line)
    if m:
        sp = {int(a): float(b) for a, b in re.findall(r' (\d+):([\d.]+)', m[4])}
        d[(cur, int(m[1]))][nt] = (float(m[2]), sp, int(m[3]))
g = lambda r: math.exp(sum(map(math.log, r)) / len(r)) if r else float('nan')
verbose = '-v' in sys.argv
for M in sorted({k[1] for k in d}):
    ref = 4 if M <= 24 else 8
    rat = collections.defaultdict(list)
    for (L, mm), v in sorted(d.items()):
        if mm != M or ref not in v: continue
        t_ref = v[ref][1][v[ref][2]]
        row = []
        for nt in sorted(v):
            t = v[nt][1][v[nt][2]]
            rat[nt].append(t_ref / t)
            row.append('NT%d %.2f' % (nt, t))
        if verbose: print(' ', L, 'M=%d' % M, ' '.join(row))
    print('M=%d speed-up over NT=%d at the launcher split (geomean, min, max):' % (M, ref),
          '; '.join('NT%d %.3f [%.2f, %.2f] n=%d' % (nt, g(r), min(r), max(r), len(r)) for nt, r in sorted(rat.items())))
