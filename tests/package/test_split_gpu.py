"""gemm() running one call as two M pieces (splits.py, heuristics.json `m_splits`): the whole
call's tactic on the first rows and the selection at their own M on the last few
(selected_plan), their results with bias (out filled with NaN first: every row written, right),
a CUDA graph of a split call, a named tactic never split, a whole-call choice outside the entry's
families not split, and the shipped entry on a layer in its bounds. The entry's bounds without a
GPU: test_splits.py."""

import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed")

import w4a16_build  # noqa: E402
from w4a16_build import kernels, selection, splits  # noqa: E402
from w4a16_build.runner import selected_plan  # noqa: E402
from _weights import check, random_weight, reference  # noqa: E402

pytestmark = pytest.mark.gpu


@pytest.fixture
def fresh(tmp_path, monkeypatch):
    monkeypatch.setenv("W4A16_TUNE_CACHE", str(tmp_path / "tune.json"))
    selection.clear_memo()
    yield
    selection.clear_memo()


@pytest.fixture
def table(monkeypatch, fresh):
    """An m_splits entry for small layers on this GPU's path: M = 129-1000, 1-8 tokens past a
    multiple of 128, every family the selection may give at those M."""
    cc = selection.rule_cc(kernels.compute_capability(torch.device("cuda")))
    fams = sorted({c.family for c in kernels.compiled().values()})
    t = {"m_splits": [{"m_min": 129, "m_max": 1000, "tail_of": 128, "tail_max": 8, "min_nk": 1, "families": fams,
                       "cc": [cc], "why": "test"}]}
    monkeypatch.setattr(splits, "heuristic_table", lambda: t)
    return t


def whole_choice(x, w, bias=None):
    """What gemm() selects for the whole call, with no m_splits entry."""
    real = splits.heuristic_table
    splits.heuristic_table = lambda: {}
    try:
        plan = selected_plan(x, w.packed, bias)
    finally:
        splits.heuristic_table = real
    assert len(plan) == 1
    return plan[0][1]


@pytest.mark.parametrize("dtype,mode,group", [("fp16", "groupwise", 128), ("bf16", "groupwise_zero", 64),
                                              ("fp16", "per_column", None)])
def test_a_call_just_past_a_multiple_runs_as_two_pieces_and_is_right(table, dtype, mode, group):
    dt = {"fp16": torch.float16, "bf16": torch.bfloat16}[dtype]
    gen = torch.Generator("cuda").manual_seed(21)
    n, k = 1040, 768
    w = random_weight(n, k, mode, group, dt, gen)
    bias = torch.randn(n, device="cuda", dtype=dt, generator=gen)
    for m, q in ((257, 256), (264, 256), (265, None), (256, None), (129, 128)):
        x = torch.randn(m, k, device="cuda", dtype=dt, generator=gen)
        plan = selected_plan(x, w.packed, bias)
        want = [(0, m, 0, n)] if q is None else [(0, q, 0, n), (q, m, 0, n)]
        assert [p for p, _ in plan] == want, m
        assert plan[0][1] == whole_choice(x, w, bias), "the first rows run the whole call's tactic"
        if q is not None:
            assert plan[1][1] == selected_plan(x[q:], w.packed, bias)[0][1], "the last rows: the selection at their M"
        out = torch.full((m, n), float("nan"), device="cuda", dtype=dt)
        w4a16_build.gemm(x, w.packed, bias, out=out)
        check(out, reference(x, w, bias), dtype, f"M = {m}, {dtype} {mode}")


def test_a_named_tactic_or_a_choice_outside_the_families_is_not_split(table):
    gen = torch.Generator("cuda").manual_seed(22)
    w = random_weight(512, 512, "groupwise", 128, torch.float16, gen)
    x = torch.randn(257, 512, device="cuda", dtype=torch.float16, generator=gen)
    auto = selected_plan(x, w.packed)
    assert len(auto) == 2
    t = auto[0][1]
    assert selected_plan(x, w.packed, tactic=t) == [((0, 257, 0, 512), t)]
    check(w4a16_build.gemm(x, w.packed, tactic=t), reference(x, w), "fp16", "named tactic at M = 257")
    family = kernels.compiled()[t].family
    table["m_splits"][0]["families"] = [f for f in table["m_splits"][0]["families"] if f != family]
    assert selected_plan(x, w.packed) == [((0, 257, 0, 512), t)]


def test_a_split_call_captured_in_a_graph_replays_right(table):
    gen = torch.Generator("cuda").manual_seed(23)
    w = random_weight(1024, 1024, "groupwise", 128, torch.float16, gen)
    x = torch.randn(385, 1024, device="cuda", dtype=torch.float16, generator=gen)
    assert len(selected_plan(x, w.packed)) == 2
    o = torch.empty(385, 1024, device="cuda", dtype=torch.float16)
    w4a16_build.gemm(x, w.packed, out=o)                 # eager warm-up
    expected = o.clone()
    g = torch.cuda.CUDAGraph()
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s), torch.cuda.graph(g, stream=s):
        w4a16_build.gemm(x, w.packed, out=o)
    torch.cuda.current_stream().wait_stream(s)
    o.fill_(float("nan"))
    x.copy_(x.flip(0))                                  # new inputs in the captured buffer
    g.replay()
    torch.cuda.synchronize()
    check(o, reference(x, w), "fp16", "graph replay of a split call")
    assert not torch.equal(o, expected)


def test_the_shipped_entry_splits_a_large_layer_just_past_a_multiple(fresh):
    """heuristics.json's entry on a layer in its bounds: M = 2049 on 8192 x 8192 (above the dense
    rule's N*K bound, so the whole call's choice is a CUTLASS tile) runs as 2048 + 1, right, with
    bias; M = 2048 runs whole."""
    dev = torch.device("cuda")
    e = selection.heuristic_table()["m_splits"][0]
    if selection.rule_cc(kernels.compute_capability(dev)) not in e["cc"]:
        pytest.skip(f"the shipped m_splits entry is for cc {e['cc']}, not this GPU's path")
    gen = torch.Generator("cuda").manual_seed(24)
    n = k = 8192
    assert n * k >= e["min_nk"] and e["m_min"] <= 2049 <= e["m_max"]
    w = random_weight(n, k, "groupwise", 128, torch.float16, gen)
    bias = torch.randn(n, device="cuda", dtype=torch.float16, generator=gen)
    x = torch.randn(2049, k, device="cuda", dtype=torch.float16, generator=gen)
    plan = selected_plan(x, w.packed, bias)
    assert [p for p, _ in plan] == [(0, 2048, 0, n), (2048, 2049, 0, n)]
    assert kernels.compiled()[plan[0][1]].family in e["families"]
    assert len(selected_plan(x[:2048], w.packed, bias)) == 1
    check(w4a16_build.gemm(x, w.packed, bias), reference(x, w, bias), "fp16", "M = 2049 split")
