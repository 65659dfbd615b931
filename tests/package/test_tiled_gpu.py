"""The SM80 path (issue 18) on the GPU: the SM80 families (tiled, skinny80) through gemm() with W4A16_FORCE_SM80=1
(on Hopper they run from their compute_80 PTX, so the build needs an 80-virtual or bare 80 entry
in W4A16_CUDA_ARCHS; they skip otherwise), against an fp32 reference at odd M and shapes, in a
CUDA graph; and the unforced selection, which keeps Hopper on its own kernels."""

import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed")
import w4a16_build  # noqa: E402
from w4a16_build import kernels, selection  # noqa: E402
from w4a16_build.runner import selected_tactic  # noqa: E402

from _weights import DT, TOL  # noqa: E402
from _weights import quantized_weight as _weight  # noqa: E402

pytestmark = pytest.mark.gpu


def _tiled():
    try:
        return [n for n, c in kernels.compiled().items() if c.family == "tiled"]
    except ImportError:
        return []


@pytest.fixture
def forced(monkeypatch):
    ptx = [e for e in kernels.family_archs("tiled") if e in ("80", "80-virtual")]
    if not ptx:
        pytest.skip("this build has no compute_80 PTX of the tiled kernels (W4A16_CUDA_ARCHS needs 80-virtual)")
    monkeypatch.setenv(kernels.FORCE_SM80_ENV, "1")
    selection.clear_memo()
    yield
    selection.clear_memo()


def _err(out, ref):
    return ((out.float() - ref).norm() / ref.norm()).item()


MODES = [("per_column", None), ("groupwise", 64), ("groupwise", 128), ("groupwise_zero", 128), ("groupwise", "K")]


@pytest.mark.parametrize("dtype", ["fp16", "bf16"])
@pytest.mark.parametrize("mode, group", MODES)
def test_forced_gemm_runs_an_sm80_kernel_and_matches(forced, dtype, mode, group):
    if not any(kernels.compiled()[n].dtype.short == dtype and kernels.compiled()[n].mode.short == mode
               for n in _tiled()):
        pytest.skip(f"no {dtype} {mode} tiled kernel in this build")
    dt = DT[dtype]
    for n, k in [(4104, 1024), (136, 256), (1024, 4096)]:
        torch.manual_seed(n + k)
        p, w_ref = _weight(n, k, mode, k if group == "K" else group, dt)
        for m in (1, 7, 33, 64, 65, 130, 257, 1000):
            x = torch.randn(m, k, device="cuda", dtype=dt)
            bias = torch.randn(n, device="cuda", dtype=dt) if m % 2 else None
            name = selected_tactic(x, p, bias)
            # An SM80 family: skinny80 (x in shared memory) only at M <= 32, tiled otherwise.
            # The skinny80 rules: M <= 8 on every layer (x of these shapes fits even Ada's 99 KB),
            # M <= 32 with N <= 9216 where x fits; the tiled kernels otherwise.
            fam = kernels.compiled()[name].family
            if m <= 7 and any(kernels.compiled()[t].family == "skinny80" for t in kernels.tactics(dtype, mode)):
                assert fam == "skinny80", (m, name)
            else:
                assert fam == "tiled" or (fam == "skinny80" and m <= 32), (m, name)
            out = torch.full((m, n), float("nan"), device="cuda", dtype=dt)
            w4a16_build.gemm(x, p, bias, out=out)
            ref = x.float() @ w_ref.t() + (bias.float() if bias is not None else 0)
            assert not torch.isnan(out).any(), f"unwritten output ({name}, M={m}, {n}x{k})"
            assert _err(out, ref) < TOL[dtype], (name, m, n, k, _err(out, ref))


def test_every_tiled_tactic_matches(forced):
    """Each compiled tiled kernel by name (not only the selection's choice), one shape, odd M."""
    n, k = 520, 640
    for name in _tiled():
        cfg = kernels.compiled()[name]
        dt = DT[cfg.dtype.short]
        group = None if cfg.mode.short == "per_column" else 128
        torch.manual_seed(1)
        p, w_ref = _weight(n, k, cfg.mode.short, group, dt)
        for m in (3, cfg.tokens + 5):
            x = torch.randn(m, k, device="cuda", dtype=dt)
            out = w4a16_build.gemm(x, p, tactic=name)
            assert _err(out, x.float() @ w_ref.t()) < TOL[cfg.dtype.short], (name, m)


def test_forced_path_in_a_cuda_graph(forced):
    if not any(kernels.compiled()[n].dtype.short == "fp16" and kernels.compiled()[n].mode.short == "groupwise"
               for n in _tiled()):
        pytest.skip("no fp16 groupwise tiled kernel in this build")
    p, w_ref = _weight(2048, 1024, "groupwise", 128, torch.float16)
    x = torch.randn(200, 1024, device="cuda", dtype=torch.float16)
    out = torch.empty(200, 2048, device="cuda", dtype=torch.float16)
    w4a16_build.gemm(x, p, out=out)              # selection outside the capture
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        w4a16_build.gemm(x, p, out=out)
    out.zero_()
    x.copy_(torch.randn_like(x))
    g.replay()
    torch.cuda.synchronize()
    assert _err(out, x.float() @ w_ref.t()) < TOL["fp16"]


def test_forced_path_refuses_a_hopper_tactic_by_name(forced):
    p, _ = _weight(256, 256, "groupwise", 128, torch.float16)
    hopper = next(n for n in kernels.tactics("fp16", "groupwise") if kernels.compiled()[n].archs == ("90a",))
    with pytest.raises(ValueError, match="does not run on .* with W4A16_FORCE_SM80=1"):
        w4a16_build.gemm(torch.randn(4, 256, device="cuda", dtype=torch.float16), p, tactic=hopper)


def test_hopper_keeps_its_own_kernels_unforced(monkeypatch):
    """Unforced on Hopper the selection takes a sm_90a kernel, never an SM80 family's PTX (the
    skinny80 rules name M <= 32; kernels.ptx_fallback puts those after Hopper's own)."""
    cc = kernels.compute_capability(torch.device("cuda", torch.cuda.current_device()))
    if cc != 90:
        pytest.skip(f"sm_{cc}: Hopper's own kernels are for sm_90")
    monkeypatch.delenv(kernels.FORCE_SM80_ENV, raising=False)
    selection.clear_memo()
    p, _ = _weight(4096, 4096, "groupwise", 128, torch.float16)
    for m in (1, 8, 16, 24, 100, 1000, 4096):
        name = selected_tactic(torch.randn(m, 4096, device="cuda", dtype=torch.float16), p)
        assert "90a" in kernels.compiled()[name].archs, (m, name)
