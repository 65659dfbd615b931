"""The output of benchmarks/ws_probe.cu, parsed once for the scripts that summarize it (the results
folders' ab_summary.py, split_rules.py, nt_table.py).

A layer's header `== DT K=.. N=.. (...) NT=.. [S=..]`, then per M a line
`DT m=M cublas=T pick=P | s:t0/t1/... [bracketed trace or shared-memory notes] ... | best NAME T (..x) ...`:
one time per form at each split, in the order the `best` part names the forms; a time marked
`!WRONG` failed the probe's reference check.
"""
import math
import re
from dataclasses import dataclass, field

HEAD = re.compile(r"== (\w+) K=(\d+) N=(\d+) .*?NT=(\d+)(?: S=(\d+))?")
LINE = re.compile(r"(\w+) m=(\d+) cublas=([\d.]+) pick=(\d+) \|(.*)\| best(.*)")


@dataclass
class Point:
    dtype: str
    k: int
    n: int
    nt: int
    stages: int | None  # the ring depth, where the header names it
    m: int
    cublas: float
    pick: int
    forms: list[str]
    times: dict[int, dict[str, float]]  # split -> form -> microseconds
    wrong: list[tuple[int, str]] = field(default_factory=list)  # (split, form) that failed the check


def points(path):
    head, out = None, []
    for line in open(path):
        h = HEAD.match(line)
        if h:
            head = (h[1], int(h[2]), int(h[3]), int(h[4]), int(h[5]) if h[5] else None)
            continue
        m = LINE.match(line)
        if not m or head is None:
            continue
        forms = re.findall(r" (\w+) [\d.]+ \(", m[6])
        body = re.sub(r"\[[^\]]*\]", "", m[5])  # traces and shared-memory notes
        times, wrong = {}, []
        for s, vals in re.findall(r" (\d+):([\d./!A-Z]+)", body):
            times[int(s)] = {}
            for form, v in zip(forms, vals.split("/")):
                if v.endswith("!WRONG"):
                    wrong.append((int(s), form))
                    v = v[: -len("!WRONG")]
                times[int(s)][form] = float(v)
        dtype, k, n, nt, stages = head
        out.append(Point(dtype, k, n, nt, stages, int(m[2]), float(m[3]), int(m[4]), forms, times, wrong))
    return out


def geomean(xs):
    return math.exp(sum(map(math.log, xs)) / len(xs))
