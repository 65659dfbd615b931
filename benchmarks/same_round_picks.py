"""Choices computed offline by another tree (benchmarks/selection_picks.py) against gemm()'s own
choice in the installed package, timed in the same interleaved rounds with fp16 cuBLAS (both
layouts), only where the two differ (same_round_tables.py needs both tables to run under one code;
this works across a change of the selection's code too):

    python benchmarks/same_round_picks.py SPEC M_LIST OUT.json PICKS.json
"""

import json
import os
import sys
import tempfile
import time

os.environ["W4A16_TUNE_CACHE"] = os.path.join(tempfile.mkdtemp(), "tune.json")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch  # noqa: E402

import w4a16_build.selection as selection  # noqa: E402
from w4a16_build.bench import CublasBench, OursBench  # noqa: E402
from w4a16_build.timing import SETTLE_S, time_interleaved  # noqa: E402

from same_round_tactic import layers  # noqa: E402


GROUP = 128             # the group selection_picks.py ranks for


def main(argv):
    spec, ms, out, oldf = argv[0], [int(v) for v in argv[1].split(",")], argv[2], argv[3]
    with open(oldf) as f:
        old_picks = json.load(f)
    rows, skipped, t0 = [], [], time.time()
    for k, n, labels in layers(spec):
        if k % GROUP:           # the picks are for this group: a layer it does not divide has none to time
            print(f"skip {k}x{n}: K is not a multiple of {GROUP}")
            skipped.append(dict(k=k, n=n, layers=labels, why=f"K is not a multiple of {GROUP}"))
            continue
        cub, ours = CublasBench(k, n), OursBench(k, n, "fp16", "groupwise", GROUP)
        for m in ms:
            selection.clear_memo()
            new, old = ours.picked(m), old_picks[f"{k}x{n}x{m}"]
            if new == old:
                rows.append(dict(k=k, n=n, m=m, layers=labels, old=old, new=new, same=True)); continue
            time.sleep(SETTLE_S)
            fns = [(f, cub.copies) for f in cub.fns(m).values()] + [(ours.fn(m, old), ours.copies), (ours.fn(m, new), ours.copies)]
            s = time_interleaved(fns)
            r = dict(k=k, n=n, m=m, layers=labels, cublas_us=min(s[:2]) * 1e6, old=old, old_us=s[2] * 1e6, new=new, new_us=s[3] * 1e6)
            rows.append(r)
            print(f"{k}x{n} M={m}: cuBLAS {r['cublas_us']:.2f} old {r['old_us']:.2f} new {r['new_us']:.2f} old/new {r['old_us']/r['new_us']:.3f}", flush=True)
        del cub, ours
        torch.cuda.empty_cache()
        with open(out, "w") as f:
            json.dump(dict(device=torch.cuda.get_device_name(), dtype="fp16", spec=spec, ms=ms, seconds=time.time() - t0,
                           rows=rows, skipped=skipped), f, indent=1)


if __name__ == "__main__":
    main(sys.argv[1:])
