"""Valid layers at the edges: shared-memory limits, launch refusals, huge N and K
(issue 12, items 2 and 3)."""

import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed")

import w4a16_build  # noqa: E402
from w4a16_build import selection  # noqa: E402
from _weights import check, random_weight, reference  # noqa: E402

pytestmark = pytest.mark.gpu
HERE = Path(__file__).resolve().parent


def gemv_tactics(dtype, mode):
    """The GEMV tactics that serve this GPU (none with W4A16_FORCE_SM80=1)."""
    served = set(w4a16_build.tactics(dtype, mode, device="cuda"))
    return [k["name"] for k in w4a16_build.list_kernels()
            if k["family"] == "gemv" and k["name"] in served]


@pytest.mark.parametrize("k, n, m", [(14336, 57344, 4), (16384, 53248, 3)])
def test_gemv_plans_near_the_shared_memory_limit(k, n, m):
    """Item 2: groupwise_zero g64 plans of 200-220 KiB used to pass can_implement and then
    fail to launch. Every GEMV tactic either runs correctly or says it cannot run; the
    selection runs."""
    if not w4a16_build.tactics("fp16", "groupwise_zero"):
        pytest.skip("no fp16 groupwise_zero kernels in this build")
    gen = torch.Generator("cuda").manual_seed(k + m)
    w = random_weight(n, k, "groupwise_zero", 64, torch.float16, gen)
    x = torch.randn(m, k, device="cuda", dtype=torch.float16, generator=gen)
    ref = reference(x, w)
    check(w4a16_build.gemm(x, w.packed), ref, "fp16", "selected tactic")
    for t in gemv_tactics("fp16", "groupwise_zero"):
        try:
            out = w4a16_build.gemm(x, w.packed, tactic=t)
        except ValueError as e:
            assert "cannot run" in str(e), str(e)
            continue
        check(out, ref, "fp16", t)


def test_selection_falls_back_when_a_launch_is_refused(monkeypatch):
    """Item 2: if the chosen tactic's launch fails, gemm() without a tactic runs the next one."""
    from w4a16_build import kernels

    if not w4a16_build.tactics("fp16", "groupwise"):
        pytest.skip("no fp16 groupwise kernels in this build")
    gen = torch.Generator("cuda").manual_seed(5)
    w = random_weight(4096, 4096, "groupwise", 128, torch.float16, gen)
    x = torch.randn(2, 4096, device="cuda", dtype=torch.float16, generator=gen)
    first = w4a16_build.runner.selected_tactic(x, w.packed)
    real = kernels.ext()

    class Refusing:
        """The real extension, except that `first` fails to launch (as an over-limit plan does)."""

        def __getattr__(self, name):
            return getattr(real, name)

        def run(self, name, *args, **kw):
            if name == first:
                return 4  # Status::kLaunchFailed
            return real.run(name, *args, **kw)

    monkeypatch.setattr(kernels, "ext", lambda: Refusing())
    try:
        out = w4a16_build.gemm(x, w.packed)
        check(out, reference(x, w), "fp16", f"fallback after {first} was refused")
        with pytest.raises(w4a16_build.W4A16Error, match="failed"):
            w4a16_build.gemm(x, w.packed, tactic=first)   # a named tactic is not replaced
    finally:
        selection.clear_memo()                                # the fallback choice was memoized


LARGE = [
    # (N, K, mode, group, Ms): N*K just below 2^31 with a padded weight of 2^31 nibbles;
    # a large LM head; a padded weight past 2^31 nibbles with N*K below it; a huge K.
    (524280, 4096, "groupwise", 128, "1,32,4100"),
    (128256, 16384, "groupwise", 128, "1,32,300"),
    (11184808, 192, "groupwise", 192, "1,32,300"),
    (64, 1048576, "groupwise", 128, "1,33"),
    (4194296, 512, "groupwise_zero", 128, "1,17"),
]


@pytest.mark.parametrize("n, k, mode, group, ms", LARGE, ids=[f"{c[0]}x{c[1]}" for c in LARGE])
def test_large_layers_run_or_are_refused(n, k, mode, group, ms):
    """Item 3: every layer a user can pack runs correctly or is refused with an exception;
    a crash (the old behaviour: SIGSEGV after "TMA Desc Addr:") fails the test."""
    if not w4a16_build.tactics("fp16", mode):
        pytest.skip(f"no fp16 {mode} kernels in this build")
    free, _ = torch.cuda.mem_get_info()
    if free < 40 * 2**30:
        pytest.skip("needs about 40 GiB of free GPU memory")
    r = subprocess.run([sys.executable, str(HERE / "_large_layer.py"), str(n), str(k), mode, str(group), ms],
                       capture_output=True, text=True, timeout=600, cwd=HERE)
    assert r.returncode == 0, f"exit {r.returncode}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    lines = r.stdout.strip().splitlines()
    assert len(lines) == len(ms.split(",")), r.stdout
    # With the N/M splitting in gemm(), none of these is refused.
    assert all(line.startswith("ok ") for line in lines), r.stdout
