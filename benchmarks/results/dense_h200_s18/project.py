import json, re, math, sys
R='benchmarks/results/dense_h200/'
dq={}
for line in open('benchmarks/results/dense_h200_s18/dq_bench_layers.txt'):
    m=re.match(r'K=(\d+) N=(\d+) .*old ([\d.]+)us .*product ([\d.]+)us', line)
    if m: dq[(int(m[1]),int(m[2]))]=(float(m[3]),float(m[4]))
pts=[]
for r in json.load(open(R+'proto_dev.json'))['rows']:
    k,n=r['k'],r['n']; o,p=dq[(k,n)]
    pts.append(dict(k=k,n=n,m=r['m'],cub=r['cublas_us'],fused=r['auto_us'],dense=r['hyb_us']-(o-p),src='dev'))
for r in json.load(open(R+'held_fp16.json'))['rows']:
    k,n=r['k'],r['n']; o,p=dq[(k,n)]
    pts.append(dict(k=k,n=n,m=r['m'],cub=r['cublas_us'],fused=r['old_us'],dense=r['dense_us']-(o-p),src='h17'))
json.dump(pts,open('benchmarks/results/dense_h200_s18/projected_points.json','w'))
for M in sorted({p['m'] for p in pts}):
    P=[p for p in pts if p['m']==M]
    g=lambda f: math.exp(sum(math.log(f(p)) for p in P)/len(P))
    print(f"M={M} n={len(P)} fused {g(lambda p:p['cub']/p['fused']):.3f} dense {g(lambda p:p['cub']/p['dense']):.3f} best {g(lambda p:p['cub']/min(p['fused'],p['dense'])):.3f} dense wins {sum(p['dense']<p['fused']/1.02 for p in P)} loses {sum(p['dense']>p['fused']*1.02 for p in P)}")
for M in (1500,2049,3000,4096):
    print("M",M)
    for p in sorted([p for p in pts if p['m']==M], key=lambda p:p['n']*p['k']):
        print(f"  {p['k']}x{p['n']} NK={p['n']*p['k']/1e6:.1f}M fused {p['cub']/p['fused']:.3f} dense {p['cub']/p['dense']:.3f} {'D' if p['dense']<p['fused'] else ''} {p['src']}")
