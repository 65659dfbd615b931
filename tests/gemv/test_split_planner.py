"""The GEMV's split planner (gemv/launch.cuh): which K split count it picks from the occupancy
calculator's answers, checked on the host with an H200's answers as tables (no GPU; nvcc needed,
as CI has)."""

import pytest


@pytest.fixture(scope="module")
def planner(host_check):
    return {case: float(v) for case, v in host_check("split_planner_check.cu").items()}


def test_picks_the_measured_fastest_split_count(planner):
    """Two layers whose every split count was timed on an H200 (m8_r32_s4, M = 2): the planner's
    choice is the fastest one there, not the 9 and 10 of the rule it replaced."""
    assert planner["sq8192"] == 7
    assert planner["k20480n7168"] == 8


def test_more_clusters_than_fit_still_get_a_plan(planner):
    assert 1 <= planner["lmhead"] <= 16


def test_failed_occupancy_queries_leave_the_first_plan(planner):
    """Every query failed: choose_splits reports it, and the plan is make_plan's (9 splits; the
    check prints minus the plan's split count after the call)."""
    assert planner["failed"] == -9


def test_x_budget_bounds_the_split_count(planner):
    """16 tokens of x over K = 28672 need at least 15 K slices (64 KiB of x per CTA)."""
    assert 15 <= planner["longk"] <= 16


def test_split_cost(planner):
    assert planner["cost_p1"] == pytest.approx(20.0)
    assert planner["cost_p2"] == pytest.approx(28.0)
    assert planner["cost_waves"] == pytest.approx(84.0)
    assert planner["cost_none"] < 0
