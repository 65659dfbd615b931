"""The build estimate's per-file costs against a measured build (generator/estimate.py, BuildCost in
generator/model.py): a cold `default` build on the 2-core build machine, its build_report.json and
the kernels each generated file held committed in benchmarks/results/build_default125_2core.json
(the test reads only that file, so it does not move when `default` is re-derived)."""

import json
from pathlib import Path

import pytest

from generator.estimate import shard_cost
from generator.model import parse_name
from generator.pipeline import Shard

RESULT = Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "build_default125_2core.json"


@pytest.fixture(scope="module")
def measured():
    doc = json.loads(RESULT.read_text())
    kernels = doc["shard_kernels"]
    return [(Shard(s["object"][:-2], tuple(parse_name(n) for n in kernels[s["object"]])), s)
            for s in doc["report"]["shards"]], doc


def test_predicted_compile_time_matches_the_measured_build(measured):
    """Issue 16 item 6 asks for default <= 20 minutes on 2 cores, --estimate first: the estimate
    must be near what a build takes (it said ~25 min for a build measured at 15 min 47 s)."""
    rows, _ = measured
    by_family = {}
    for sh, s in rows:
        fam = sh.kernels[0].family
        pred, meas = by_family.get(fam, (0.0, 0.0))
        by_family[fam] = (pred + shard_cost(sh)[0], meas + s["seconds"])
    pred = sum(p for p, _ in by_family.values())
    meas = sum(m for _, m in by_family.values())
    assert abs(pred / meas - 1) < 0.10, (pred, meas)
    for fam, (p, m) in by_family.items():
        assert abs(p / m - 1) < 0.25, (fam, p, m)


def test_predicted_peak_memory_is_an_upper_bound(measured):
    """The job pool divides memory by the predicted peak: under-predicting it could swap the build."""
    rows, _ = measured
    for sh, s in rows:
        assert shard_cost(sh)[1] * 1024 >= s["peak_mb"], (sh.filename, shard_cost(sh), s["peak_mb"])
