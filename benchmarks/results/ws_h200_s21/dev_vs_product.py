"""Development table: the probe's fastest split (probe6_final_fp16.txt, call 7) against the product's
choice before the ws kernels (product_s20wheel_fp16_m17_127_auto.json: the twentieth session's
wheel, `bench --tactic auto`, call 1 of the same session on the same H200). Two calls, so not the
same rounds; the probe's split is the fastest of those it timed, not the launcher's choice.

    python dev_vs_product.py probe6_final_fp16.txt product_s20wheel_fp16_m17_127_auto.json
"""
import json
import re
import sys


def main(probe, product):
    best, cur = {}, None
    for line in open(probe):
        m = re.match(r"== fp16 K=(\d+) N=(\d+)", line)
        if m:
            cur = (int(m[1]), int(m[2]))
            continue
        m = re.match(r"(\S+) m=(\d+) .*best s=(\d+) ([\d.]+) us", line)
        if m:
            key = (*cur, int(m[2]))
            best[key] = min(best.get(key, 1e9), float(m[4]))
    rows = json.load(open(product))["rows"]
    print("K x N        M   probe us  product us  product / probe  product tactic")
    for r in rows:
        key = (r["k"], r["n"], r["m"])
        if key in best:
            t = r["tactic"].split("groupwise_")[1]
            print(f"{r['k']:>5}x{r['n']:<6} {r['m']:>3} {best[key]:9.2f} {r['us']:10.2f} {r['us'] / best[key]:12.2f}     {t}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
