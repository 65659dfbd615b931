"""timing.time_interleaved without a GPU: a fake card whose first round after an idle pause runs
faster (boost clock before the power cap bites), as the H200 does at large M."""

import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed")

from w4a16_build import timing  # noqa: E402


class FakeCard:
    """Rounds run at `base` seconds, except while the card is fresh from idle: then 10% faster.
    Each round uses up one round of that freshness. With `drift`, every round also runs that much
    slower than the one before (the clock still settling towards the power cap)."""

    def __init__(self, fresh_rounds=1, drift=0.0):
        self.fresh = fresh_rounds
        self.drift = drift
        self.log = []

    def timer_class(self):
        card = self

        class FakeTimer:
            def __init__(self, fn_per_copy, copies):
                self.base = fn_per_copy     # the tests pass each timer's true time as its "function"

            def round(self, replays=20):
                t = self.base * (0.9 if card.fresh > 0 else 1.0) * (1 + card.drift * len(card.log))
                card.fresh -= 1
                card.log.append(self.base)
                return t
        return FakeTimer


@pytest.mark.parametrize("n", [2, 3, 4])
def test_equal_tactics_time_equal_whichever_goes_first(monkeypatch, n):
    """Measured on an H200 (benchmarks/NOTES.md, "Timing order"): the same two tactics timed in
    both orders, the one timed first in each round was 5-15% faster at M >= 1500. Identical
    timers must come out identical, whatever their place in the list."""
    card = FakeCard()
    monkeypatch.setattr(timing, "GraphTimer", card.timer_class())
    secs = timing.time_interleaved([(1.0, 1)] * n)
    assert secs == [1.0] * n, secs


def test_results_follow_the_callers_order(monkeypatch):
    card = FakeCard(fresh_rounds=0)
    monkeypatch.setattr(timing, "GraphTimer", card.timer_class())
    assert timing.time_interleaved([(3.0, 1), (1.0, 1), (2.0, 1)]) == [3.0, 1.0, 2.0]


def test_every_timer_takes_every_place_in_a_round(monkeypatch):
    """The kept rounds rotate the order (a, b, c / b, c, a / c, a, b): each timer is first once.
    (The cyclic order keeps b right after a; carry-over from one tactic to the next is not
    balanced, only the place in the round.)"""
    card = FakeCard(fresh_rounds=0)
    monkeypatch.setattr(timing, "GraphTimer", card.timer_class())
    timing.time_interleaved([(1.0, 1), (2.0, 1), (3.0, 1)], repeats=3)
    kept = card.log[3:]                     # after the discarded warm-up pass
    firsts = {kept[i] for i in range(0, len(kept), 3)}
    assert firsts == {1.0, 2.0, 3.0}, card.log


def test_tactics_timed_one_after_another_time_equal(monkeypatch):
    """time_graph (the tuner's screening, the bench's ranking) times tactics one by one after an
    idle pause: the first must not keep the boost-clock round."""
    card = FakeCard()
    monkeypatch.setattr(timing, "GraphTimer", card.timer_class())
    assert [timing.time_graph(1.0, 1, repeats=1) for _ in range(3)] == [1.0] * 3
    card = FakeCard()
    monkeypatch.setattr(timing, "GraphTimer", card.timer_class())
    assert [timing.time_graph(1.0, 1) for _ in range(3)] == [1.0] * 3


@pytest.mark.parametrize("n", [2, 3, 4])
def test_equal_tactics_time_equal_while_the_clock_drifts(monkeypatch, n):
    """A clock that keeps falling through the measurement: the best round of each timer would be
    its earliest, and the timer first in the first kept round would win. The kept rounds are whole
    rotations of the order and averaged, so each timer's rounds sit at the same mean place."""
    card = FakeCard(fresh_rounds=0, drift=0.01)
    monkeypatch.setattr(timing, "GraphTimer", card.timer_class())
    secs = timing.time_interleaved([(1.0, 1)] * n)
    assert max(secs) == pytest.approx(min(secs), rel=1e-9), secs


def test_nothing_to_time_and_no_repeats(monkeypatch):
    card = FakeCard(fresh_rounds=0)
    monkeypatch.setattr(timing, "GraphTimer", card.timer_class())
    assert timing.time_interleaved([]) == []
    assert timing.time_interleaved([(2.0, 1)], repeats=0) == [2.0]
    assert timing.time_graph(2.0, 1, repeats=0) == 2.0
