"""timing.time_interleaved without a GPU: a fake card whose first round after an idle pause runs
faster (boost clock before the power cap bites), as the H200 does at large M."""

import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed")

from w4a16_build import timing  # noqa: E402


class FakeCard:
    """Rounds run at `base` seconds, except while the card is fresh from idle: then 10% faster.
    Each round uses up one round of that freshness. With `drift`, every round also runs that much
    slower than the one before (the clock still settling towards the power cap). With `carry`, a
    round right after a round of another timer runs that much slower (what one tactic leaves
    behind slows the next)."""

    def __init__(self, fresh_rounds=1, drift=0.0, carry=0.0):
        self.fresh = fresh_rounds
        self.drift = drift
        self.carry = carry
        self.log = []
        self.last = None

    def timer_class(self):
        card = self

        class FakeTimer:
            def __init__(self, fn_per_copy, copies):
                self.base = fn_per_copy     # the tests pass each timer's true time as its "function"
                self.copies = copies

            def round(self, replays=20):
                t = self.base * (0.9 if card.fresh > 0 else 1.0) * (1 + card.drift * len(card.log))
                if card.last is not None and card.last is not self:
                    t *= 1 + card.carry
                card.last = self
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


def test_every_timer_follows_every_timer_equally_often(monkeypatch):
    """The kept rounds: each timer right after each timer (itself included) equally often, and at
    the same mean place."""
    card = FakeCard(fresh_rounds=0)
    monkeypatch.setattr(timing, "GraphTimer", card.timer_class())
    timing.time_interleaved([(1.0, 1), (2.0, 1), (3.0, 1)], repeats=3)
    pairs = {}
    for prev, cur in zip(card.log[2:], card.log[3:]):   # from the warm-up pass's last round on
        pairs[prev, cur] = pairs.get((prev, cur), 0) + 1
    assert len(pairs) == 9 and len(set(pairs.values())) == 1, pairs
    kept = card.log[3:]
    places = {b: [i for i, v in enumerate(kept) if v == b] for b in (1.0, 2.0, 3.0)}
    assert len({sum(p) / len(p) for p in places.values()}) == 1, places


@pytest.mark.parametrize("n", [2, 3, 4])
def test_equal_tactics_time_equal_when_one_slows_the_next(monkeypatch, n):
    """Measured on an H200 (benchmarks/NOTES.md, "Timing order", eighth session): with the order
    rotated (a, b / b, a) the same two tactics still came out up to 7% apart between the two
    orders of the list, the one that more often ran right after the other being slower."""
    card = FakeCard(fresh_rounds=0, carry=0.05)
    monkeypatch.setattr(timing, "GraphTimer", card.timer_class())
    secs = timing.time_interleaved([(1.0, 1)] * n)
    assert max(secs) == pytest.approx(min(secs), rel=1e-9), secs


@pytest.mark.parametrize("n", [1, 2, 3, 5])
def test_each_timer_gets_at_least_repeats_rounds(monkeypatch, n):
    card = FakeCard(fresh_rounds=0)
    monkeypatch.setattr(timing, "GraphTimer", card.timer_class())
    timing.time_interleaved([(float(i + 1), 1) for i in range(n)], repeats=3)
    kept = card.log[n:]                     # one warm-up pass: each round takes 20 s of "busy" time
    counts = {kept.count(float(i + 1)) for i in range(n)}
    assert len(counts) == 1 and min(counts) >= 3, kept


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


def test_a_boost_that_outlasts_one_round_is_not_kept(monkeypatch):
    """Short rounds (small M): the card's boost after an idle pause lasts several rounds. The
    warm-up runs until the timers have been busy WARM_S, not one round each."""
    card = FakeCard(fresh_rounds=6)
    monkeypatch.setattr(timing, "GraphTimer", card.timer_class())
    secs = timing.time_interleaved([(1e-3, 1), (1e-3, 1)], replays=20)   # 20 ms per round
    assert secs == [pytest.approx(1e-3, rel=1e-9)] * 2, secs
    assert len(card.log) >= timing.WARM_S / 20e-3      # busy time of both timers together
