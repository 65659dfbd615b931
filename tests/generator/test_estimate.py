"""The build estimate's per-file costs against a measured build (generator/estimate.py, BuildCost in
generator/model.py): a cold `default` build on the 2-core build machine, its build_report.json
committed in benchmarks/results/build_default125_2core.json."""

import json
from pathlib import Path

import pytest

from generator import manifest, pipeline
from generator.estimate import shard_cost

ROOT = Path(__file__).resolve().parents[2]
RESULT = ROOT / "benchmarks" / "results" / "build_default125_2core.json"


@pytest.fixture(scope="module")
def measured():
    rep = json.loads(RESULT.read_text())["report"]
    plan = pipeline.plan(manifest.load(ROOT / "manifests" / "default.yaml"))
    shards = {sh.filename: sh for sh in plan.shards}
    rows = {s["object"][:-2]: s for s in rep["shards"] if s["object"][:-2] in shards}
    # The manifest may have moved on since the measurement: most of its files must still be there.
    assert len(rows) >= 0.8 * len(plan.shards), "re-measure: default's files changed"
    return shards, rows


def test_predicted_compile_time_matches_the_measured_build(measured):
    """Issue 16 item 6 asks for default <= 20 minutes on 2 cores, --estimate first: the estimate
    must be near what a build takes (it said ~25 min for a build measured at 15 min 47 s)."""
    shards, rows = measured
    by_family = {}
    for f, s in rows.items():
        fam = shards[f].kernels[0].family
        pred, meas = by_family.get(fam, (0.0, 0.0))
        by_family[fam] = (pred + shard_cost(shards[f])[0], meas + s["seconds"])
    pred = sum(p for p, _ in by_family.values())
    meas = sum(m for _, m in by_family.values())
    assert abs(pred / meas - 1) < 0.10, (pred, meas)
    for fam, (p, m) in by_family.items():
        assert abs(p / m - 1) < 0.25, (fam, p, m)


def test_predicted_peak_memory_is_an_upper_bound(measured):
    """The job pool divides memory by the predicted peak: under-predicting it could swap the build."""
    shards, rows = measured
    for f, s in rows.items():
        assert shard_cost(shards[f])[1] * 1024 >= 0.97 * s["peak_mb"], (f, shard_cost(shards[f]), s["peak_mb"])
