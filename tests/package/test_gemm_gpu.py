"""Correctness of every compiled tactic on the GPU against an fp32 reference.

Parametrized over exactly what the build holds (`list_kernels()`), fp16 and
bf16, the three modes, group sizes 64/128/per-column, bias or not, several M
and shapes with N not a multiple of any tile and a small K. The output is
poisoned with NaN before each call so an unwritten element fails.
"""

import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed")
import w4a16_build  # noqa: E402
from w4a16_build import kernels  # noqa: E402
from _weights import quantized_weight as make_weight  # noqa: E402
from _weights import seed_of  # noqa: E402

from generator.model import parse_name  # noqa: E402

try:
    KERNELS = w4a16_build.list_kernels()
except ImportError:
    KERNELS = []

pytestmark = pytest.mark.gpu
DT = {"fp16": torch.float16, "bf16": torch.bfloat16}
TOL = {"fp16": 2e-3, "bf16": 1e-2}
MS = [1, 3, 16, 17, 100, 256, 1000]


def ms_for(info):
    """CUTLASS: a spread of M. GEMV: every M it accepts, and one beyond (refused)."""
    if info["max_m"]:
        return list(range(1, info["max_m"] + 2))
    return MS
SHAPES = [(4104, 1024), (256, 128), (1024, 4096)]


def wsplit_fits(name, m, k, group, mode):
    """For the warp-split forms (skinny k_warps > 1, skinny80), which hold x (m rows of K) in shared
    memory: whether the call fits, by the launcher's own arithmetic (SkinnyWsplit::make in
    gemv/skinny_wsplit_launch.cuh), in 220 KB (Hopper's form) or the device's shared memory per CTA
    (skinny80: 99 KB on Ada, 163 KB on an A100). None for other kernels, and where this torch
    cannot say the device's limit."""
    cfg = parse_name(name)
    if not (cfg.family == "skinny80" or (cfg.family == "skinny" and cfg.k_warps > 1)):
        return None
    limit = 220 * 1024
    if cfg.family == "skinny80":
        props = torch.cuda.get_device_properties(torch.cuda.current_device())
        optin = getattr(props, "shared_memory_per_block_optin", None)
        if optin is None:
            return None
        limit = min(limit, optin)
    align = lambda b: (b + 127) // 128 * 128          # noqa: E731
    rows = 16 * (8 // cfg.k_warps)
    chunks = 4 if cfg.max_m <= 16 else 2               # WeightChunks<NT, 1>: 2 KB stages for <= 2 token tiles
    x_raw = m * (k + 8) * 2
    if x_raw > limit:
        return False
    sz = 0 if mode == "per_column" else align(k // group * rows * 2 * (2 if mode == "groupwise_zero" else 1))
    loop = align(x_raw) + sz + 8 * cfg.stages * chunks * 512
    red = cfg.k_warps * ((m + 7) // 8 * 8) * rows * 4
    return 512 + max(loop, red) <= limit


def groups_for(mode):
    return [None] if mode == "per_column" else [64, 128]


CASES = [(k["name"], g, shape)
         for k in KERNELS for g in groups_for(k["mode"]) for shape in SHAPES]


def rel_err(out, ref):
    return ((out.float() - ref).norm() / ref.norm()).item()


@pytest.mark.parametrize("name, group, shape", CASES, ids=[f"{c[0]}-g{c[1]}-{c[2][0]}x{c[2][1]}" for c in CASES])
def test_tactic_matches_reference(name, group, shape):
    info = next(k for k in KERNELS if k["name"] == name)
    cc = kernels.compute_capability(torch.device("cuda", torch.cuda.current_device()))
    if not kernels.runs_on(parse_name(name), cc):
        pytest.skip(f"{name} does not serve sm_{cc} in this build (W4A16_CUDA_ARCHS, W4A16_FORCE_SM80)")
    dtype = DT[info["dtype"]]
    n, k = shape
    torch.manual_seed(seed_of(name, group, shape))
    p, w_ref = make_weight(n, k, info["mode"], group, dtype)
    group_ok = info["mode"] == "per_column" or group % parse_name(name).k_step == 0 or group == k
    for m in ms_for(info):
        applicable = group_ok and (info["max_m"] == 0 or m <= info["max_m"])
        for with_bias in (False, True):
            x = torch.randn(m, k, device="cuda", dtype=dtype)
            bias = torch.randn(n, device="cuda", dtype=dtype) if with_bias else None
            out = torch.full((m, n), float("nan"), device="cuda", dtype=dtype)
            if not applicable:
                with pytest.raises(ValueError, match="cannot run"):
                    w4a16_build.gemm(x, p, bias, tactic=name, out=out)
                assert torch.isnan(out).all(), "a refused call touched out"
                continue
            fits = wsplit_fits(name, m, k, k if group is None else group, info["mode"])
            if fits is False:                 # x past the shared memory: refused, out untouched
                with pytest.raises(ValueError, match="cannot run"):
                    w4a16_build.gemm(x, p, bias, tactic=name, out=out)
                assert torch.isnan(out).all(), "a refused call touched out"
                continue
            if fits is None and parse_name(name).family == "skinny80":
                try:                          # the device's limit unknown to this torch: either
                    w4a16_build.gemm(x, p, bias, tactic=name, out=out)
                except ValueError as e:
                    assert "cannot run" in str(e) and torch.isnan(out).all(), (m, str(e))
                    continue
            else:
                w4a16_build.gemm(x, p, bias, tactic=name, out=out)
            ref = x.float() @ w_ref.t()
            if bias is not None:
                ref += bias.float()
            assert not torch.isnan(out).any(), f"unwritten output (M={m})"
            err = rel_err(out, ref)
            assert err < TOL[info["dtype"]], f"M={m} bias={with_bias}: relative error {err:.2e}"


@pytest.mark.parametrize("dtype", ["fp16", "bf16"])
@pytest.mark.parametrize("mode", ["per_column", "groupwise", "groupwise_zero"])
def test_default_rule_and_leading_dims(dtype, mode):
    if not w4a16_build.tactics(dtype, mode):
        pytest.skip(f"no {dtype} {mode} kernel in this build")
    p, w_ref = make_weight(512, 1024, mode, 128, DT[dtype])
    x = torch.randn(2, 3, 1024, device="cuda", dtype=DT[dtype])
    out = w4a16_build.gemm(x, p)
    assert out.shape == (2, 3, 512)
    assert rel_err(out, x.float() @ w_ref.t()) < TOL[dtype]


def any_weight():
    k = KERNELS[0]
    return make_weight(256, 512, k["mode"], 128, DT[k["dtype"]])[0], k


def test_bad_inputs_are_refused_cleanly():
    p, info = any_weight()
    dt = DT[info["dtype"]]
    x = torch.randn(4, 512, device="cuda", dtype=dt)
    out = torch.full((4, 256), float("nan"), device="cuda", dtype=dt)
    other = torch.float16 if dt == torch.bfloat16 else torch.bfloat16
    cases = [
        (lambda: w4a16_build.gemm(x.cpu(), p, out=out), ValueError, "CUDA"),
        (lambda: w4a16_build.gemm(x.to(other), p, out=out), TypeError, "dtype"),
        (lambda: w4a16_build.gemm(x[:, :256].contiguous(), p, out=out), ValueError, "K ="),
        (lambda: w4a16_build.gemm(x.t().contiguous().t(), p, out=out), ValueError, "contiguous"),
        (lambda: w4a16_build.gemm(x, p, bias=torch.zeros(255, device="cuda", dtype=dt), out=out), ValueError, "shape"),
        (lambda: w4a16_build.gemm(x, p, bias=torch.zeros(256, dtype=dt), out=out), ValueError, "cpu"),
        (lambda: w4a16_build.gemm(x, p, tactic="no_such_kernel", out=out), ValueError, "unknown tactic"),
        (lambda: w4a16_build.gemm(x, p, out=torch.empty(4, 255, device="cuda", dtype=dt)), ValueError, "shape"),
        (lambda: w4a16_build.gemm(x, "weight", out=out), TypeError, "PackedWeight"),
    ]
    buf = torch.empty(4 * 512 + 8, device="cuda", dtype=dt)
    misaligned = buf[1:1 + 4 * 512].view(4, 512)
    cases.append((lambda: w4a16_build.gemm(misaligned, p, out=out), ValueError, "aligned"))
    wrong = [k for k in KERNELS if k["dtype"] != info["dtype"] or k["mode"] != info["mode"]]
    if wrong:
        cases.append((lambda: w4a16_build.gemm(x, p, tactic=wrong[0]["name"], out=out), ValueError, "is for"))
    for fn, err, match in cases:
        with pytest.raises(err, match=match):
            fn()
        assert torch.isnan(out).all(), f"refused call ({match}) touched out"


def test_empty_m():
    p, info = any_weight()
    x = torch.empty(0, 512, device="cuda", dtype=DT[info["dtype"]])
    assert w4a16_build.gemm(x, p).shape == (0, 256)


def test_warp_split_kernel_refuses_an_x_too_large_and_the_selection_takes_the_next():
    """Issue 15: the warp-split skinny kernel keeps x of the whole K in shared memory, so it refuses
    a call whose m * K does not fit; where its size rule ranks it first (M <= 8, N*K <= 4.2M) the
    selection must take the next tactic, and a call naming it must be refused cleanly."""
    from w4a16_build import selection
    from w4a16_build.runner import selected_tactic

    served = set(w4a16_build.tactics("fp16", "groupwise", device="cuda"))
    # The Hopper form (skinny, k_warps 8) or, on Ampere/Ada and with W4A16_FORCE_SM80=1, the SM80 one.
    names = [k["name"] for k in KERNELS if k["name"] in served and k.get("k_warps", 1) == 8
             and k["family"] in ("skinny", "skinny80") and k["max_m"] == 16]
    if not names:
        pytest.skip("no fp16 groupwise warp-split kernel for this GPU in this build")
    n, k = 256, 16384                                   # N*K = 4.19M; x of 8 tokens = 262 KB
    p, w_ref = make_weight(n, k, "groupwise", 128, torch.float16)
    x = torch.randn(8, k, device="cuda", dtype=torch.float16)
    out = torch.full((8, n), float("nan"), device="cuda", dtype=torch.float16)
    with pytest.raises(ValueError, match="cannot run"):
        w4a16_build.gemm(x, p, tactic=names[0], out=out)
    assert torch.isnan(out).all(), "a refused call touched out"
    ranked = selection.ranked_tactics("fp16", "groupwise", 128, n, k, 8, x.device)
    assert ranked[0] in names, ranked[:3]                # the rule ranks it first ...
    assert selected_tactic(x, p) not in names            # ... and the selection passes it by
    assert rel_err(w4a16_build.gemm(x, p), x.float() @ w_ref.t()) < TOL["fp16"]
    x1 = x[:1].contiguous()                              # one token fits: it runs there
    assert rel_err(w4a16_build.gemm(x1, p, tactic=names[0]), x1.float() @ w_ref.t()) < TOL["fp16"]
