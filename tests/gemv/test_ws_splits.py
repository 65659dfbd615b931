"""The ws form's K split rule (gemv/skinny_ws_launch.cuh, ws::choose_splits): its picks from an
H200's occupancy answers, checked on the host (no GPU; nvcc needed, as CI has). The expected
splits are the fastest measured on that card with every split timed
(benchmarks/results/ws_h200_s26/; the 64-token cases benchmarks/results/ws_h200_s24/); the rule
before this one picked 4, 6, 8, 3 and 3 on the first, second, fourth, fifth and sixth cases."""

import pytest


@pytest.fixture(scope="module")
def picks(host_check):
    return {case: int(v) for case, v in host_check("ws_split_check.cu").items()}


@pytest.mark.parametrize("case, fastest", [
    ("t16_8192x8192", 2), ("t8_8192x8192", 2), ("t16_17920x5120", 8), ("t16_14336x4096", 6),
    ("t16_4096x28672", 1), ("t64_3584x8192", 2), ("t64_14336x5120", 4), ("t8_4864x896", 16)])
def test_picks_the_fastest_measured_split(picks, case, fastest):
    assert picks[case] == fastest


def test_without_the_one_per_sm_answer_the_depth_is_the_ctas_per_sm(picks):
    # 8192 x 8192 at 16 tokens, depth 3 at every split: 4 splits cost least (one wave up to 8).
    assert picks["nospread"] == 4


def test_no_split_when_no_resident_answer(picks):
    assert picks["none"] == 0


def test_a_split_when_the_ctas_per_sm_are_unknown(picks):
    assert picks["noocc"] == 2


def test_each_cta_keeps_four_stages(picks):
    assert picks["shortk"] == 4
