"""PyTorch integration on the GPU: W4A16Linear, torch.compile, CUDA graphs, tuning + cache."""

import os
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed")
from torch import nn  # noqa: E402

import w4a16_build  # noqa: E402
from w4a16_build.packing import dequantize_packed  # noqa: E402

pytestmark = pytest.mark.gpu


def has(dtype, mode):
    try:
        return bool(w4a16_build.tactics(dtype, mode))
    except ImportError:
        return False


def model(dtype=torch.float16, mode="groupwise"):
    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(512, 256), nn.GELU(), nn.Linear(256, 128)).to("cuda", dtype)
    return m


@pytest.mark.parametrize("mode", ["per_column", "groupwise", "groupwise_zero"])
def test_w4a16linear_matches_linear_on_dequantized_weight(mode):
    if not has("fp16", mode):
        pytest.skip(f"no fp16 {mode} kernels in this build")
    lin = nn.Linear(512, 256).to("cuda", torch.float16)
    q = w4a16_build.W4A16Linear.from_linear(lin, group_size=128, mode=mode)
    ref = nn.Linear(512, 256).to("cuda", torch.float32)
    with torch.no_grad():
        ref.weight.copy_(dequantize_packed(q.packed))
        ref.bias.copy_(lin.bias.float())
    for m in (1, 7, 33, 300):
        x = torch.randn(m, 512, device="cuda", dtype=torch.float16)
        err = ((q(x).float() - ref(x.float())).norm() / ref(x.float()).norm()).item()
        assert err < 2e-3, f"M={m}: {err:.2e}"


def test_torch_compile_fullgraph_equals_eager():
    if not has("fp16", "groupwise"):
        pytest.skip("no fp16 groupwise kernels in this build")
    m = model()
    w4a16_build.replace_linears(m, group_size=128)
    x = torch.randn(4, 512, device="cuda", dtype=torch.float16)
    eager = m(x)
    compiled = torch.compile(m, fullgraph=True)
    torch.testing.assert_close(compiled(x), eager, rtol=0, atol=0)


def test_cuda_graph_equals_eager():
    if not has("fp16", "groupwise"):
        pytest.skip("no fp16 groupwise kernels in this build")
    m = model()
    w4a16_build.replace_linears(m, group_size=128)
    x = torch.randn(8, 512, device="cuda", dtype=torch.float16)
    eager = m(x)  # also selects tactics and sizes the workspace before capture
    g = torch.cuda.CUDAGraph()
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s), torch.cuda.graph(g, stream=s):
        out = m(x)
    torch.cuda.current_stream().wait_stream(s)
    g.replay()
    torch.cuda.synchronize()
    torch.testing.assert_close(out, eager, rtol=0, atol=0)


REUSE = """
import os, torch, w4a16_build, w4a16_build.tuning as t, w4a16_build.selection as s
def refuse(*a, **k):
    raise SystemExit("re-tuned although the cache has this shape")
t.tune = refuse
p = w4a16_build.pack(torch.zeros(256, 512, dtype=torch.int8, device="cuda"),
                     torch.ones(256, 4, dtype=torch.float16, device="cuda"))
x = torch.randn(int(os.environ["M"]), 512, device="cuda", dtype=torch.float16)
w4a16_build.gemm(x, p)
print(s._memo)
"""


def test_tune_then_reuse_in_another_process(tmp_path, monkeypatch):
    if not has("fp16", "groupwise"):
        pytest.skip("no fp16 groupwise kernels in this build")
    cache = tmp_path / "tune.json"
    monkeypatch.setenv("W4A16_TUNE_CACHE", str(cache))
    res = w4a16_build.tune(256, 512, "fp16", "groupwise", 128, m_values=[1, 8, 64], progress=False)
    assert set(res) == {1, 8, 64} and all(t in w4a16_build.tactics("fp16", "groupwise") for t, _ in res.values())
    assert cache.is_file()
    for m in (1, 64):
        env = dict(os.environ, W4A16_TUNE="1", W4A16_TUNE_CACHE=str(cache), M=str(m))
        r = subprocess.run([sys.executable, "-c", REUSE], env=env, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stdout + r.stderr
        assert res[m][0] in r.stdout  # the memoized choice is the tuned one
