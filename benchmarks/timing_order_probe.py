"""Does the order of interleaved timing change the result? The selection's choice and a named tactic
timed with `timing.time_interleaved` in both orders, several trials (benchmarks/NOTES.md, "Timing
order"). With a fair timer both orders give the same ratio.

    python benchmarks/timing_order_probe.py OUT.json [TRIALS] [WARM_S]

WARM_S: the busy time of the warm-up passes (timing.WARM_S unless given). Each row also records
the time of every round of that trial (warm-up included), in order, to show how the clock moves.

Groupwise fp16, group 128; the cases are four points where tuning changed the choice at large M
(H200, 2026-11-28; two of them slower in benchmarks/same_round_tuned.py's check).
"""

import json
import os
import sys
import tempfile
import time

os.environ["W4A16_TUNE_CACHE"] = os.path.join(tempfile.mkdtemp(), "tune.json")   # untuned choices
os.environ.pop("W4A16_TUNE", None)                 # no tuning on first use either

import torch  # noqa: E402

from w4a16_build.bench import OursBench  # noqa: E402
from w4a16_build import timing  # noqa: E402
from w4a16_build.timing import SETTLE_S, time_interleaved  # noqa: E402

LOG = []
_round = timing.GraphTimer.round


def _logged_round(self, replays=20):
    t = _round(self, replays)
    LOG.append((id(self), t))
    return t


timing.GraphTimer.round = _logged_round

P = "fp16_int4_groupwise_"
CASES = [(4096, 14336, 4096, "t128x128x128_c1x1_coop_persistent"),     # K, N, M, the other tactic
         (4096, 14336, 3000, "t128x128x128_c1x1_coop_persistent"),
         (5120, 27648, 1500, "t128x128x128_c1x1_coop_persistent"),
         (13824, 5120, 3000, "t256x128x128_c1x1_coop_persistent")]


def main(argv):
    trials = int(argv[1]) if len(argv) > 1 else 4
    warm_s = float(argv[2]) if len(argv) > 2 else None
    rows = []
    for k, n, m, other in CASES:
        ours = OursBench(k, n, "fp16", "groupwise", 128)
        a, b = ours.picked(m), P + other
        for trial in range(trials):
            for order in ("ab", "ba"):
                time.sleep(SETTLE_S)
                fa, fb = (ours.fn(m, a), ours.copies), (ours.fn(m, b), ours.copies)
                LOG.clear()
                s = time_interleaved([fa, fb] if order == "ab" else [fb, fa], warm_s=warm_s)
                first = LOG[0][0]
                seq = [("a" if (i == first) == (order == "ab") else "b") + f":{t * 1e6:.1f}" for i, t in LOG]
                ta, tb = (s[0], s[1]) if order == "ab" else (s[1], s[0])
                rows.append(dict(k=k, n=n, m=m, a=a, b=b, order=order, trial=trial, a_us=ta * 1e6, b_us=tb * 1e6,
                            rounds=seq, warm_s=timing.WARM_S if warm_s is None else warm_s))
                print(f"{k}x{n} M={m} {order} trial {trial}: selected {ta * 1e6:.1f} other {tb * 1e6:.1f} "
                      f"ratio {ta / tb:.3f} ({len(seq)} rounds)", flush=True)
                if trial == 0:
                    print("   ", " ".join(seq), flush=True)
        del ours
        torch.cuda.empty_cache()
    with open(argv[0], "w") as f:
        json.dump(dict(device=torch.cuda.get_device_name(), rows=rows), f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
