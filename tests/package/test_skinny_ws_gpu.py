"""The skinny kernel's warp-specialized form (the `_ws` tactics, gemv/skinny_ws_kernel.cuh) on
layers whose K split, chosen by its launcher, takes each path of the reduction after the loop:
shares of four-row quads read 16 bytes at a time (up to 12 splits) and a row per thread (16
splits). On an H200 (benchmarks/results/ws_h200_s22) the launcher picked, for the m32 / m64
tactics: 16 / 16 splits for 896 rows x K 4864, 16 / 12 for 2048 x 8192, 12 / 8 for 3072 x 3072,
8 / 8 for 2048 x 2048 and 4 / 3 for 8192 x 2048. The split comes from the device's occupancy
(nothing forces it), so on another card the paths reached may differ. Against an fp32
reference, every mode, bias or not, M across the tactic's band; out is poisoned with NaN first,
so an element no split wrote fails.
"""

import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed")
import w4a16_build  # noqa: E402
from w4a16_build import kernels  # noqa: E402
from _weights import quantized_weight, seed_of  # noqa: E402

from generator.model import parse_name  # noqa: E402

try:
    WS = [k for k in w4a16_build.list_kernels() if k["name"].endswith("_ws")]
except ImportError:
    WS = []

pytestmark = pytest.mark.gpu
DT = {"fp16": torch.float16, "bf16": torch.bfloat16}
TOL = {"fp16": 2e-3, "bf16": 1e-2}
SHAPES = [(896, 4864), (8192, 2048), (3072, 3072), (2048, 2048), (2048, 8192)]  # (N, K)


def ms(max_m):
    low = 1 if max_m <= 16 else 17 if max_m <= 32 else 33
    return sorted({low, (low + max_m) // 2 | 1, max_m})


def tactic(name):
    """The ws tactic's listing entry; skips where the build holds none or the GPU is not Hopper."""
    info = next((k for k in WS if k["name"] == name), None)
    if info is None:
        pytest.skip("this build holds no such _ws tactic")
    cc = kernels.compute_capability(torch.device("cuda", torch.cuda.current_device()))
    if not kernels.runs_on(parse_name(name), cc):
        pytest.skip(f"{name} does not serve sm_{cc} (Hopper only)")
    return info


@pytest.mark.parametrize("name", [k["name"] for k in WS] or ["(no ws tactic in this build)"])
def test_ws_reduction_paths_match_the_reference(name):
    info = tactic(name)
    dtype = DT[info["dtype"]]
    group = None if info["mode"] == "per_column" else 128
    for n, k in SHAPES:
        torch.manual_seed(seed_of(name, n, k))
        p, w_ref = quantized_weight(n, k, info["mode"], group, dtype)
        for m in ms(info["max_m"]):
            x = torch.randn(m, k, device="cuda", dtype=dtype)
            bias = torch.randn(n, device="cuda", dtype=dtype) if m % 2 else None
            out = torch.full((m, n), float("nan"), device="cuda", dtype=dtype)
            w4a16_build.gemm(x, p, bias, tactic=name, out=out)
            ref = x.float() @ w_ref.t()
            if bias is not None:
                ref += bias.float()
            assert not torch.isnan(out).any(), f"{n}x{k} M={m}: unwritten output"
            err = ((out.float() - ref).norm() / ref.norm()).item()
            assert err < TOL[info["dtype"]], f"{n}x{k} M={m}: relative error {err:.2e}"


# (N, K, group): the producer carries the scale group as a counter from its split's first stage,
# which falls inside a group when the stages per group (group / 64) exceed 1: 1 (group 64), 3
# (192, not a power of two: the division branch), 4 (256), 19 (1216: the division branch with
# split starts inside groups 1-3 at the 16 splits both tactics took on an H200) and all of K.
GROUP_SHAPES = [(3072, 3072, 64), (3072, 3072, 192), (2048, 8192, 256), (896, 4864, 1216), (896, 4864, 4864)]


@pytest.mark.parametrize("name", [k["name"] for k in WS if k["mode"] != "per_column"]
                         or ["(no groupwise ws tactic in this build)"])
def test_ws_scale_groups_from_mid_group_split_starts(name):
    info = tactic(name)
    dtype = DT[info["dtype"]]
    for n, k, group in GROUP_SHAPES:
        torch.manual_seed(seed_of(name, n, k, group))
        p, w_ref = quantized_weight(n, k, info["mode"], group, dtype)
        for m in sorted({min(17, info["max_m"] - 1) | 1, info["max_m"]}):  # an odd M (7, 15 or 17) and the tile
            x = torch.randn(m, k, device="cuda", dtype=dtype)
            out = torch.full((m, n), float("nan"), device="cuda", dtype=dtype)
            w4a16_build.gemm(x, p, tactic=name, out=out)
            ref = x.float() @ w_ref.t()
            assert not torch.isnan(out).any(), f"{n}x{k} g{group} M={m}: unwritten output"
            err = ((out.float() - ref).norm() / ref.norm()).item()
            assert err < TOL[info["dtype"]], f"{n}x{k} g{group} M={m}: relative error {err:.2e}"
