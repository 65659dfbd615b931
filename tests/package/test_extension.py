"""The installed package and its compiled extension (no GPU needed).

Skips, with the reason, where the extension has not been built; CI builds
and installs the `minimal` manifest before running these.
"""

import json
import re
import subprocess
import sys
from importlib import resources

import pytest

w4a16_build = pytest.importorskip("w4a16_build", reason="w4a16_build is not installed")
try:
    from w4a16_build import _C
except ImportError as e:  # pragma: no cover - depends on the machine
    pytest.skip(f"w4a16_build extension not built: {e}", allow_module_level=True)

from generator.model import parse_name  # noqa: E402

H100_SMS = 132
# can_implement checks pointers for alignment and presence (scale modes need
# scales, the zero mode zeros); no memory is touched, so any aligned value does.
PTRS = dict(x=1 << 12, w=2 << 12, scales=3 << 12, zeros=4 << 12, out=5 << 12)


def built_plan():
    return json.loads(resources.files("w4a16_build").joinpath("build_manifest.json").read_text())


def test_list_kernels_is_the_generated_plan():
    kernels = w4a16_build.list_kernels()
    plan = built_plan()
    assert [k["name"] for k in kernels] == [k["name"] for k in plan["kernels"]]
    assert kernels, "the build holds no kernel"
    for k in kernels:
        assert parse_name(k["name"]).to_dict() == k


def test_build_info():
    info = w4a16_build.build_info()
    assert info["manifest"] == built_plan()["manifest"]
    assert re.fullmatch(r"[0-9a-f]{64}", info["manifest_sha256"])
    assert info["kernel_count"] == len(info["kernel_names"]) == len(w4a16_build.list_kernels())
    assert info["cutlass_version"] == "4.2.0"
    assert re.fullmatch(r"\d+\.\d+(\.\d+)?", info["nvcc_version"])
    assert "90a" in info["cuda_archs"]
    assert re.fullmatch(r"[0-9a-f]{16}", info["build_hash"])


def group_for(k, kdim):
    return kdim if k["mode"] == "per_column" else 128


def problem(m, n, kk, g, **ptrs):
    return _C.Problem(m=m, n=n, k=kk, group_size=g, **{**PTRS, **ptrs}, sm_count=H100_SMS)


def test_the_registry_holds_names_only():
    """Issue 14: the configuration is the generator's model parsed from the name; the binding
    keeps no parallel struct of it."""
    names = _C.list_kernels()
    assert names == sorted(names) and all(isinstance(n, str) for n in names)
    p = problem(3, 4104, 128, 128)
    assert (p.m, p.n, p.k, p.group_size) == (3, 4104, 128, 128)


@pytest.mark.parametrize("kernel", list(_C.list_kernels()))
def test_can_implement_and_workspace(kernel):
    k = parse_name(kernel).to_dict()

    def can(m, n, kk, g, **ptrs):
        return _C.can_implement(kernel, problem(m, n, kk, g, **ptrs))

    ms = (1, 16, 17, 1000) if k["max_m"] == 0 else (1, k["max_m"])
    # The warp-split forms hold x (m rows of K) in shared memory: 16 rows of K = 4096 fit, 32 do not.
    wsplit = k["family"] == "skinny80" or k.get("k_warps", 1) > 1
    kk = 1024 if wsplit and k["max_m"] > 16 else 4096
    for m in ms:
        ok = can(m, 4096, kk, group_for(k, kk))
        assert ok == 0, f"M={m}: {_C.status_string(ok)}"
    if k["max_m"]:
        assert can(k["max_m"] + 1, 4096, 4096, group_for(k, 4096)) == 1  # past its M: refused
    assert can(3, 4104, 128, group_for(k, 128)) == 0
    ws = _C.workspace_size(kernel, problem(16, 4096, 4096, group_for(k, 4096)))
    if k["family"] in ("gemv", "skinny", "skinny80", "tiled"):
        assert ws == 0            # split K summed in the cluster or the CTA (tiled: no split), no workspace
    elif k.get("scheduler") == "streamk":
        # Fewer output tiles than SMs: stream-K splits K and needs room for partial tiles.
        assert ws > 0
    # A problem the kernel cannot run needs no workspace.
    assert _C.workspace_size(kernel, problem(16, 4100, 4096, group_for(k, 4096))) == 0
    # N not a multiple of 8, K not a multiple of 64, M = 0: refused, not crashed.
    assert can(16, 4100, 4096, group_for(k, 4096)) == 1
    assert can(16, 4096, 4000, group_for(k, 4000)) == 1
    assert can(0, 4096, 4096, group_for(k, 4096)) == 1
    if k["mode"] != "per_column":
        # A group that is not a multiple of the CTA K, or does not divide K.
        assert can(16, 4096, 4096, 32) == 1
        assert can(16, 4096, 4096 + 128, 256) == 1
        assert can(16, 4096, 4096, 128, scales=0) == 1  # scales missing
    if k["mode"] == "groupwise_zero":
        assert can(16, 4096, 4096, 128, zeros=0) == 1


def test_unknown_kernel_name():
    with pytest.raises(KeyError, match="no compiled kernel"):
        _C.can_implement("fp16_int4_nothing", _C.Problem(m=1, n=8, k=64, group_size=64))


def test_installed_generate_cli(tmp_path):
    r = subprocess.run([sys.executable, "-m", "w4a16_build.generate", "--list", "--manifest", "minimal"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == "67 kernels (manifest minimal)"


def test_the_tuner_and_the_selection_share_one_heuristic_order():
    """tune() compares candidates against the tactic gemm() runs untuned; that is the first
    applicable tactic of the selection's heuristic order, computed in one place for both."""
    from w4a16_build import selection, tuning

    for dtype, mode in (("fp16", "groupwise"), ("bf16", "groupwise_zero"), ("fp16", "per_column")):
        names = w4a16_build.tactics(dtype, mode)
        if not names:
            continue
        for m, n, k in ((1, 2048, 2048), (3, 4096, 4096), (200, 8192, 8192)):
            group = k if mode == "per_column" else 128
            order = selection.heuristic_order(dtype, mode, group, n, k, m, H100_SMS)
            assert sorted(order) == sorted(names)
            applicable = order[1:]                        # as if the first could not run
            assert tuning.heuristic_choice(dtype, mode, group, n, k, m, H100_SMS, applicable) == order[1]


def test_a_problem_keeps_the_tensors_its_addresses_point_into_alive():
    """A Problem carries raw device addresses. When it did not hold its tensors, one built in a
    helper outlived x and out: the allocator handed their memory to the next tensor (a stream-K
    tactic's workspace), the kernel's output overwrote the workspace's flags and tune() hung in
    its screening at M = 1024 (H200, 18944x3584). CPU tensors serve here: only addresses are taken."""
    import gc
    import weakref

    import torch
    from w4a16_build.kernels import problem
    from w4a16_build.packing import pack

    n, k = 64, 128
    packed = pack(torch.randint(-8, 8, (n, k), dtype=torch.int8), torch.ones(n, 1, dtype=torch.float16),
                  None, mode="groupwise", dtype=torch.float16)
    x, out, bias = torch.zeros(3, k, dtype=torch.float16), torch.zeros(3, n, dtype=torch.float16), torch.zeros(n, dtype=torch.float16)
    refs = [weakref.ref(t) for t in (x, out, bias, packed.qweight, packed.scales)]
    prob = problem(x, packed, out, bias, sms=H100_SMS)
    del x, out, bias, packed
    gc.collect()
    assert all(r() is not None for r in refs), "a live Problem's tensors were freed"
    assert (prob.m, prob.n, prob.k) == (3, n, k)
    assert _C.can_implement(w4a16_build.list_kernels()[0]["name"], prob) >= 0   # still the extension's type
    del prob
    gc.collect()
    assert all(r() is None for r in refs)
