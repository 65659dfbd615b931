"""tune() on the GPU (issue 16, item 5): a tuned choice is the heuristic's own or beat it in the
same interleaved rounds, at the bucket's M and at its check points (the bucket's smallest and middle
M), and the heuristic's choice it compares with is what gemm() runs untuned."""

import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed")

import w4a16_build  # noqa: E402
from w4a16_build import selection  # noqa: E402
from w4a16_build.kernels import can_implement, check_device, problem  # noqa: E402
from w4a16_build.timing import random_packed  # noqa: E402
from w4a16_build.tune_cache import TuneCache  # noqa: E402
from w4a16_build.tuning import KEEP_MARGIN, check_points  # noqa: E402

pytestmark = pytest.mark.gpu


def untuned_choice(n, k, m):
    """What gemm()'s selection picks with an empty tuning cache (W4A16_TUNE_CACHE points at a file
    that does not exist) and nothing memoized: the real path, not a copy of the tuner's logic."""
    device = torch.device("cuda", torch.cuda.current_device())
    p = random_packed(n, k, "fp16", "groupwise", 128, device)
    x = torch.randn(m, k, device=device, dtype=torch.float16)
    prob = problem(x, p, torch.empty(m, n, device=device, dtype=torch.float16), sms=check_device(device))
    selection.clear_memo()
    choice = selection.select_tactic("fp16", "groupwise", 128, n, k, m, device, lambda t: can_implement(t, prob) == 0)
    selection.clear_memo()
    return choice


@pytest.mark.parametrize("n, k", [(3584, 18944), (5120, 3072)])   # a down-projection (K ~ 19K); a small o-proj
def test_tune_keeps_a_choice_only_where_it_beat_the_heuristic_in_the_same_rounds(tmp_path, monkeypatch, n, k):
    if not w4a16_build.tactics("fp16", "groupwise"):
        pytest.skip("no fp16 groupwise kernels in this build")
    monkeypatch.setenv("W4A16_TUNE_CACHE", str(tmp_path / "empty.json"))
    details = {}
    res = w4a16_build.tune(n, k, "fp16", "groupwise", 128, m_values=[1024, 4096], progress=False,
                           cache=TuneCache(tmp_path / "t.json"), details=details)
    assert set(res) == {1024, 4096}
    for b, (tactic, us) in res.items():
        rec = details[b]
        h = rec["heuristic"]
        assert h == untuned_choice(n, k, b)
        assert h in rec["confirm"] and us == rec["confirm"][tactic]
        if tactic != h:
            assert us < rec["confirm"][h] * (1 - KEEP_MARGIN), rec
            assert rec["kept"] == "tuned" and set(rec["checks"]) <= set(check_points(b)), rec
            for cm, c in rec["checks"].items():
                assert c["heuristic_tactic"] == untuned_choice(n, k, cm)
                assert c["tuned"] <= c["heuristic"], rec
        for cm, c in rec.get("checks", {}).items():
            print(f"  M={cm}: tuned {c['tuned']:.1f} us, heuristic {c['heuristic_tactic']} {c['heuristic']:.1f} us")
        print(f"{n}x{k} M={b}: kept {rec['kept']} {tactic} {us:.1f} us; heuristic {h} "
              f"{rec['confirm'][h]:.1f} us; screened {len(rec['screen'])}")
