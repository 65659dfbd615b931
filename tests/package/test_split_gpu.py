"""gemm() running one call as two M pieces (splits.py, heuristics.json `m_splits`): the pieces'
tactics (selected_plan), their results with bias (out filled with NaN first: every row written,
right), a CUDA graph of a split call, a named tactic never split, and the shipped entry firing on
a layer in its bounds. The entry's bounds without a GPU: test_splits.py."""

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
def entry(monkeypatch, fresh):
    """An m_splits entry for small layers on this GPU: M = 129-1000, 1-8 tokens past a multiple of 128."""
    cc = kernels.compute_capability(torch.device("cuda"))
    e = {"m_min": 129, "m_max": 1000, "tail_of": 128, "tail_max": 8, "min_nk": 1, "cc": [selection.rule_cc(cc)],
         "why": "test"}
    monkeypatch.setattr(splits, "heuristic_table", lambda: {"m_splits": [e]})
    return e


@pytest.mark.parametrize("dtype,mode,group", [("fp16", "groupwise", 128), ("bf16", "groupwise_zero", 64),
                                              ("fp16", "per_column", None)])
def test_a_call_just_past_a_multiple_runs_as_two_pieces_and_is_right(entry, dtype, mode, group):
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
        if q is not None:
            r_choice = selected_plan(x[q:], w.packed, bias)[0][1]
            assert plan[1][1] == r_choice, "the last rows run the selection at their own M"
        out = torch.full((m, n), float("nan"), device="cuda", dtype=dt)
        w4a16_build.gemm(x, w.packed, bias, out=out)
        check(out, reference(x, w, bias), dtype, f"M = {m}, {dtype} {mode}")


def test_a_named_tactic_is_never_split(entry):
    gen = torch.Generator("cuda").manual_seed(22)
    w = random_weight(512, 512, "groupwise", 128, torch.float16, gen)
    x = torch.randn(257, 512, device="cuda", dtype=torch.float16, generator=gen)
    auto = selected_plan(x, w.packed)
    assert len(auto) == 2
    t = auto[0][1]
    assert selected_plan(x, w.packed, tactic=t) == [((0, 257, 0, 512), t)]
    check(w4a16_build.gemm(x, w.packed, tactic=t), reference(x, w), "fp16", "named tactic at M = 257")


def test_a_split_call_captured_in_a_graph_replays_right(entry):
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
    """heuristics.json's entry (Hopper: N * K >= 40M, M = 1025-3168, 1-96 tokens past a multiple
    of 128): on a 10240 x 4096 layer, M = 2049 runs as 2048 + 1 and is right; M = 2048 and a
    layer below the bound run whole."""
    dev = torch.device("cuda")
    e = selection.heuristic_table()["m_splits"][0]
    if selection.rule_cc(kernels.compute_capability(dev)) not in e["cc"]:
        pytest.skip(f"the shipped m_splits entry is for cc {e['cc']}, not this GPU's path")
    gen = torch.Generator("cuda").manual_seed(24)
    n, k = 10240, 4096
    assert n * k >= e["min_nk"] > 9216 * 4096
    w = random_weight(n, k, "groupwise", 128, torch.float16, gen)
    bias = torch.randn(n, device="cuda", dtype=torch.float16, generator=gen)
    x = torch.randn(2049, k, device="cuda", dtype=torch.float16, generator=gen)
    assert [p for p, _ in selected_plan(x, w.packed, bias)] == [(0, 2048, 0, n), (2048, 2049, 0, n)]
    assert len(selected_plan(x[:2048], w.packed, bias)) == 1
    check(w4a16_build.gemm(x, w.packed, bias), reference(x, w, bias), "fp16", "M = 2049 split")
    small = random_weight(9216, k, "groupwise", 128, torch.float16, gen)
    assert len(selected_plan(x, small.packed)) == 1
