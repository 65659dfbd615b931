"""Which families serve which GPU (issue 18), without a GPU: kernels.runs_on and check_device with
the build and the device faked."""

import pytest

pytest.importorskip("torch", reason="PyTorch is not installed")

from w4a16_build import kernels  # noqa: E402

from generator.model import parse_name  # noqa: E402

CUTLASS = parse_name("fp16_int4_groupwise_t128x16x64_c1x1_coop_streamk")
SKINNY = parse_name("fp16_int4_groupwise_skinny_m16_r16_s2_kw8")
TILED = parse_name("fp16_int4_groupwise_tiled_t64_r16_s4")


@pytest.fixture
def build(monkeypatch):
    """Fakes a build: `set(entries)` gives the tiled family's W4A16_CUDA_ARCHS entries."""
    state = {"tiled": ("80-real",)}
    monkeypatch.setattr(kernels, "family_archs", lambda fam: state.get(fam, ("90a-real",)))
    monkeypatch.delenv(kernels.FORCE_SM80_ENV, raising=False)

    class Build:
        def set(self, entries):
            state["tiled"] = tuple(entries)
    return Build()


def test_hopper_families_serve_sm90_only(build):
    for cc in (80, 86, 89, 100, 120):
        assert not kernels.runs_on(CUTLASS, cc) and not kernels.runs_on(SKINNY, cc)
    assert kernels.runs_on(CUTLASS, 90) and kernels.runs_on(SKINNY, 90)


def test_sm80_sass_serves_ampere_and_ada_and_ptx_serves_newer(build):
    build.set(["80-real"])
    assert [cc for cc in (75, 80, 86, 89, 90, 100) if kernels.runs_on(TILED, cc)] == [80, 86, 89]
    build.set(["80-virtual"])
    assert [cc for cc in (75, 80, 86, 89, 90, 100) if kernels.runs_on(TILED, cc)] == [80, 86, 89, 90, 100]
    build.set(["80"])                 # CMake's bare arch: SASS and PTX
    assert [cc for cc in (75, 80, 90) if kernels.runs_on(TILED, cc)] == [80, 90]


def test_the_switch_leaves_only_the_sm80_families(build, monkeypatch):
    build.set(["80-real", "80-virtual"])
    monkeypatch.setenv(kernels.FORCE_SM80_ENV, "1")
    assert kernels.runs_on(TILED, 90) and not kernels.runs_on(CUTLASS, 90) and not kernels.runs_on(SKINNY, 90)
    build.set(["80-real"])            # no PTX: nothing of it runs on Hopper, forced or not
    assert not kernels.runs_on(TILED, 90)


@pytest.fixture
def device(monkeypatch, build):
    """Fakes the device (compute capability) and the compiled kernels."""
    state = {"cc": 90, "compiled": {c.name: c for c in (CUTLASS, SKINNY, TILED)}}
    monkeypatch.setattr(kernels, "_device_facts", lambda d: (state["cc"], 100, f"GPU sm_{state['cc']}"))
    monkeypatch.setattr(kernels, "compiled", lambda: state["compiled"])

    class FakeExt:
        def build_info(self):
            return {"cuda_archs": "90a-real", "manifest": "m"}
    monkeypatch.setattr(kernels, "ext", lambda: FakeExt())
    return state


def test_gpus_older_than_sm80_are_refused(device):
    device["cc"] = 75
    with pytest.raises(kernels.UnsupportedDeviceError, match="sm_75.*sm_80 or newer"):
        kernels.check_device(None)


def test_an_ampere_gpu_without_sm80_kernels_is_refused_with_the_fix(device):
    device["cc"] = 86
    assert kernels.check_device(None) == 100                  # the tiled kernel serves it
    device["compiled"] = {c.name: c for c in (CUTLASS, SKINNY)}
    with pytest.raises(kernels.UnsupportedDeviceError, match="sm_86.*80-real"):
        kernels.check_device(None)


def test_the_switch_without_sm80_kernels_says_so(device, build, monkeypatch):
    monkeypatch.setenv(kernels.FORCE_SM80_ENV, "1")
    build.set(["80-real"])                                    # no PTX: nothing runs on this sm_90
    with pytest.raises(kernels.UnsupportedDeviceError, match="W4A16_FORCE_SM80=1"):
        kernels.check_device(None)
    build.set(["80-virtual"])
    assert kernels.check_device(None) == 100
