"""The ws form's K split rule (gemv/skinny_ws_launch.cuh, ws::choose_splits): its picks from an
H200's occupancy answers, checked on the host (no GPU; nvcc needed, as CI has). The expected
splits are the fastest measured on that card with every split timed
(benchmarks/results/ws_h200_s26/); the rule before this one picked 4, 6, 8, 3 and 3 on the first,
second, fourth, fifth and sixth cases."""

import pytest


@pytest.fixture(scope="module")
def picks(host_check):
    return {case: int(v) for case, v in host_check("ws_split_check.cu").items()}


@pytest.mark.parametrize("case, fastest", [
    ("t16_8192x8192", 2), ("t8_8192x8192", 2), ("t16_17920x5120", 8), ("t16_14336x4096", 6),
    ("t16_4096x28672", 1), ("t64_3584x8192", 2), ("t64_14336x5120", 4), ("t8_4864x896", 16)])
def test_picks_the_fastest_measured_split(picks, case, fastest):
    assert picks[case] == fastest


def test_a_split_without_the_one_per_sm_answer(picks):
    assert picks["nospread"] in (1, 2, 3, 4, 6, 8, 12, 16)


def test_no_split_when_no_occupancy_answer(picks):
    assert picks["none"] == 0
    assert picks["noocc"] == 0


def test_each_cta_keeps_four_stages(picks):
    assert picks["shortk"] in (1, 2)
