"""Two builds of benchmarks/skinny_harness.cu against each other, from their `bench` outputs.

    python benchmarks/harness_ab.py DIR BASE NEW

DIR holds the outputs of `./BINARY bench ...` (stdout) as files named `BASE_r<round>.txt` and
`NEW_r<round>.txt` (BASE and NEW are the whole name before `_r`, e.g. `second_h0`), one per binary
and round, the binaries run in turn (alternating rounds). For each variant and M:
the geomean over the layers of BASE's time / NEW's time (> 1: NEW is faster), with the layers
where it is lowest and highest; each time is the best of its rounds.
"""

import glob
import math
import os
import re
import sys
from collections import defaultdict

_POINT = re.compile(r"(\S+) ([\d.]+)us")


def read(path):
    """{(layer 'NxK', m, variant): µs} of one harness `bench` output."""
    times, layer = {}, None
    with open(path) as f:
        for line in f:
            if line.startswith("=="):
                layer = line.split()[1]
            elif line.startswith("m=") and layer is not None:
                m = int(line[2:].split()[0])
                for variant, us in _POINT.findall(line):
                    times[(layer, m, variant)] = float(us)
    return times


def best_times(folder, binary):
    """The best time per point over every round file `<binary>_r<N>.txt` in `folder` (the whole name:
    `h0` does not take `first_h0_r1.txt`)."""
    best = {}
    for path in sorted(glob.glob(os.path.join(folder, f"{glob.escape(binary)}_r*.txt"))):
        if not re.fullmatch(rf"{re.escape(binary)}_r\d+\.txt", os.path.basename(path)):
            continue
        for key, us in read(path).items():
            best[key] = min(us, best.get(key, us))
    return best


def compare(base, new):
    """[(variant, m, geomean base/new, (lowest, layer), (highest, layer), layers)] over the points both have."""
    ratios = defaultdict(list)
    for key, us in base.items():
        if key in new:
            layer, m, variant = key
            ratios[(variant, m)].append((us / new[key], layer))
    out = []
    for (variant, m), v in sorted(ratios.items()):
        g = math.exp(sum(math.log(r) for r, _ in v) / len(v))
        out.append((variant, m, g, min(v), max(v), len(v)))
    return out


def main(argv):
    if len(argv) != 4:
        print(__doc__.strip())
        return 2
    folder, base, new = argv[1:]
    rows = compare(best_times(folder, base), best_times(folder, new))
    if not rows:
        print(f"no point timed by both {base} and {new} in {folder}")
        return 1
    for variant, m, g, lo, hi, n in rows:
        print(f"{variant:28s} m={m:3d} {base}/{new} geomean {g:.3f}  lowest {lo[0]:.3f} ({lo[1]})  "
              f"highest {hi[0]:.3f} ({hi[1]})  layers {n}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
