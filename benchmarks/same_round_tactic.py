"""The selected tactic against named tactics, timed in the same interleaved rounds (with fp16 cuBLAS
in both layouts and tinygemm), per layer and M: the data a heuristic rule is set from.

    python benchmarks/same_round_tactic.py SPEC M_LIST DTYPE OUT.json TACTIC[,TACTIC...]

SPEC: corpus models as for `bench --corpus` (benchmarks/shapes.yaml), or "shapes:KxN;KxN".
TACTIC may contain {dt} for the dtype, e.g. "{dt}_int4_groupwise_skinny_m16_r16_s2_kw8".
Groupwise, group 128; layers whose K is not a multiple of 128 are skipped. Tactics that cannot
take a call are left out of its row. Used for issue 15's warp-split rules (benchmarks/NOTES.md).
"""

import json
import os
import sys
import tempfile
import time

# The selection's own choices, not a tuned one: an empty tuning cache for this run.
os.environ["W4A16_TUNE_CACHE"] = os.path.join(tempfile.mkdtemp(), "tune.json")

import torch  # noqa: E402

from w4a16_build.bench import CublasBench, OursBench, TinygemmBench, applicable  # noqa: E402
from w4a16_build.corpus import shapes as corpus_shapes  # noqa: E402
from w4a16_build.timing import SETTLE_S, time_interleaved  # noqa: E402


def layers(spec):
    if spec.startswith("shapes:"):
        return [(int(a), int(b), []) for a, b in (s.split("x") for s in spec[7:].split(";"))]
    return corpus_shapes(spec)


def main(argv):
    spec, ms, dtype, out = argv[0], [int(v) for v in argv[1].split(",")], argv[2], argv[3]
    names = [c.format(dt=dtype) for c in argv[4].split(",")]
    rows, t0 = [], time.time()
    for k, n, labels in layers(spec):
        if k % 128:
            print(f"skip {k}x{n}: K is not a multiple of 128")
            continue
        cub, ours, tiny = CublasBench(k, n), OursBench(k, n, dtype, "groupwise", 128), TinygemmBench(k, n)
        for m in ms:
            time.sleep(SETTLE_S)
            auto = ours.picked(m)
            ok = applicable(names, torch.empty(m, k, device="cuda", dtype=ours.dt), ours.base, ours.sms)
            fns = [(f, cub.copies) for f in cub.fns(m).values()] + [(ours.fn(m, auto), ours.copies)]
            fns += [(ours.fn(m, t), ours.copies) for t in ok]
            if tiny.error is None:
                fns.append((tiny.fn(m), tiny.copies))
            s = time_interleaved(fns)
            r = dict(k=k, n=n, m=m, layers=labels, cublas_us=min(s[:2]) * 1e6, auto=auto, auto_us=s[2] * 1e6,
                     cand={t: s[3 + i] * 1e6 for i, t in enumerate(ok)},
                     tinygemm_us=s[-1] * 1e6 if tiny.error is None else None)
            rows.append(r)
            cand = " ".join(f"{t}={v:.2f}" for t, v in r["cand"].items())
            print(f"{k}x{n} M={m}: cuBLAS {r['cublas_us']:.2f} auto {r['auto_us']:.2f} ({auto}) {cand}", flush=True)
        del cub, ours, tiny
        torch.cuda.empty_cache()
        with open(out, "w") as f:  # after every layer: a run cut short keeps what it measured
            json.dump(dict(device=torch.cuda.get_device_name(), dtype=dtype, spec=spec, seconds=time.time() - t0,
                           rows=rows), f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
