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
    # the tests below change the build between calls: the scan, uncached
    monkeypatch.setattr(kernels, "_any_kernel_runs_on", kernels._any_kernel_runs_on.__wrapped__)

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


def test_the_tiled_kernel_with_fewest_waves_of_ctas_then_most_ctas_ranks_first():
    """Review (2026-11-28): decode on Ampere took t128 r32 (1.5-1.7x slower at M <= 16 on the H200
    through the PTX) because the rank wanted a 32-token tile default does not have. Tenth session:
    the rank by padded tokens then took t64 r16 where its CTAs spill into a second wave (N >= 18432
    at M <= 24 on 132 SMs: 1.2-1.6x slower than t128 r32) and t128 r32 at M = 128 on N = 4096 (2x
    slower than t64 r16, which still fits one wave; benchmarks/results/sm80_h200, tiled_h200). The
    108-SM case is the rule's prediction for an A100, not a measurement."""
    small, large = parse_name("fp16_int4_groupwise_tiled_t64_r16_s4"), parse_name("fp16_int4_groupwise_tiled_t128_r32_s3")

    def first(m, n, sms=132):
        return min((small, large), key=lambda c: c.rank_key(m, n, sms, {})).name

    assert [first(m, 4096) for m in (1, 16, 32, 64, 100, 128)] == [small.name] * 6   # one wave both
    assert [first(m, 4096) for m in (1000, 4096)] == [large.name] * 2                # fewer waves
    assert [first(m, 18432) for m in (1, 8, 16, 24)] == [large.name] * 4             # 144 CTAs > 132
    assert [first(m, 16384) for m in (1, 8, 16, 24)] == [small.name] * 4             # 128 CTAs
    assert first(16, 16384, sms=108) == large.name                                   # 108 SMs: predicted


def test_sm80_path_choices_have_their_own_tuning_cache_key(monkeypatch):
    """Review: a tune() run with the switch set must not store SM80-path choices under the key the
    GPU's own kernels are looked up with (nor the other way round)."""
    from w4a16_build import selection

    monkeypatch.setattr(selection, "device_key", lambda d: ("NVIDIA H200", 132))
    monkeypatch.delenv(kernels.FORCE_SM80_ENV, raising=False)
    plain = selection.cache_key(None, "b", "fp16", "groupwise", 128, 4096, 4096)
    monkeypatch.setenv(kernels.FORCE_SM80_ENV, "1")
    forced = selection.cache_key(None, "b", "fp16", "groupwise", 128, 4096, 4096)
    assert plain != forced and "W4A16_FORCE_SM80" in forced


def test_the_selection_offers_only_the_families_that_serve_the_gpu(monkeypatch, build):
    from w4a16_build import selection

    build.set(["80-real"])
    monkeypatch.setattr(selection, "compiled", lambda: {c.name: c for c in (CUTLASS, SKINNY, TILED)})
    monkeypatch.setattr(selection, "tuned_choices_memoized", lambda *a: {})
    monkeypatch.setattr(selection, "check_device", lambda d: 100)
    monkeypatch.setattr(selection, "heuristic_order", lambda *a, **kw: [CUTLASS.name, SKINNY.name, TILED.name])
    for cc, want in ((90, [CUTLASS.name, SKINNY.name]), (86, [TILED.name])):
        monkeypatch.setattr(selection, "compute_capability", lambda d, cc=cc: cc)
        monkeypatch.setattr(selection, "card_of", lambda d: "H100")
        assert selection.ranked_tactics("fp16", "groupwise", 128, 256, 256, 8, None) == want
    build.set(["80-real", "80-virtual"])
    monkeypatch.setenv(kernels.FORCE_SM80_ENV, "1")
    monkeypatch.setattr(selection, "compute_capability", lambda d: 90)
    monkeypatch.setattr(selection, "card_of", lambda d: "H100")
    assert selection.ranked_tactics("fp16", "groupwise", 128, 256, 256, 8, None) == [TILED.name]


def test_check_device_scans_the_registry_once(monkeypatch, build):
    """check_device runs on every gemm() call: the scan over every compiled kernel is done once
    per compute capability and switch setting, not per call."""
    calls = []
    monkeypatch.setattr(kernels, "_device_facts", lambda d: (90, 132, "GPU"))
    monkeypatch.setattr(kernels, "compiled", lambda: {c.name: c for c in (CUTLASS, SKINNY, TILED)})
    real = kernels.runs_on
    monkeypatch.setattr(kernels, "runs_on", lambda cfg, cc: calls.append(cfg) or real(cfg, cc))
    kernels._any_kernel_runs_on.cache_clear()
    for _ in range(5):
        assert kernels.check_device(None) == 132
    assert len(calls) == 1                       # the first kernel serves sm_90: one scan, stopped there
    kernels._any_kernel_runs_on.cache_clear()


def test_a_hopper_gpu_runs_its_own_kernels_before_the_sm80_ptx(monkeypatch, build):
    """Issue 18: the SM80 families also serve Hopper through their compute_80 PTX; a heuristic rule
    naming one (the skinny80 rule at small M) must not put that JIT-compiled path before Hopper's own
    kernels. Unforced on sm_90 they come last, in their order; on Ampere/Ada and with the switch set
    they are all there is."""
    from w4a16_build import selection

    skinny80 = parse_name("fp16_int4_groupwise_skinny80_m16_kw8_s2")
    build.set(["80-real", "80-virtual"])
    monkeypatch.setattr(kernels, "family_archs",
                        lambda fam: ("80-real", "80-virtual") if fam in ("tiled", "skinny80") else ("90a-real",))
    monkeypatch.setattr(selection, "compiled", lambda: {c.name: c for c in (CUTLASS, SKINNY, TILED, skinny80)})
    monkeypatch.setattr(selection, "tuned_choices_memoized", lambda *a: {})
    monkeypatch.setattr(selection, "check_device", lambda d: 100)
    # the heuristic table's order, before the sort
    monkeypatch.setattr(selection, "tactics", lambda dtype, mode: [CUTLASS.name, SKINNY.name, TILED.name, skinny80.name])
    monkeypatch.setattr(selection, "rank_by_heuristic",
                        lambda *a, **kw: [skinny80.name, TILED.name, CUTLASS.name, SKINNY.name])
    for cc, want in ((90, [CUTLASS.name, SKINNY.name, skinny80.name, TILED.name]), (86, [skinny80.name, TILED.name])):
        monkeypatch.setattr(selection, "compute_capability", lambda d, cc=cc: cc)
        monkeypatch.setattr(selection, "card_of", lambda d: "H100")
        assert selection.ranked_tactics("fp16", "groupwise", 128, 256, 256, 8, None) == want
    monkeypatch.setenv(kernels.FORCE_SM80_ENV, "1")
    monkeypatch.setattr(selection, "compute_capability", lambda d: 90)
    monkeypatch.setattr(selection, "card_of", lambda d: "H100")
    assert selection.ranked_tactics("fp16", "groupwise", 128, 256, 256, 8, None) == [skinny80.name, TILED.name]


def test_a_tail_rule_outranks_the_buckets_tuned_choice_only_at_its_m(monkeypatch, build):
    """Found in review (eighteenth session): a tuned choice stands for its whole M bucket, but tune()
    checks it only at the bucket's M and check points, never at M just past a multiple of 128,
    where the dense rule names another path. There the rule ranks first; at other M of the bucket
    the tuned choice still does. With W4A16_FORCE_SM80=1 (the SM80 path) the Hopper-only rule does
    not fire and the tuned choice (if it serves) or the heuristic decides."""
    from w4a16_build import selection

    dense = parse_name("fp16_int4_groupwise_dequant_mm")
    tuned = parse_name("fp16_int4_groupwise_t128x128x128_c1x1_coop_persistent")
    build.set(["80-real", "80-virtual"])
    monkeypatch.setattr(kernels, "family_archs",
                        lambda fam: {"tiled": ("80-real", "80-virtual"),
                                     "dequant": ("80-real", "80-virtual", "90a-real")}.get(fam, ("90a-real",)))
    names = [CUTLASS.name, tuned.name, TILED.name, dense.name]
    fake = {c.name: c for c in (CUTLASS, tuned, TILED, dense)}
    monkeypatch.setattr(selection, "compiled", lambda: fake)
    monkeypatch.setattr(kernels, "compiled", lambda: fake)        # fits() reads the registry
    monkeypatch.setattr(selection, "tactics", lambda dtype, mode: names)
    monkeypatch.setattr(selection, "tuned_choices_memoized", lambda *a: {4096: (tuned.name, 1e-4)})
    monkeypatch.setattr(selection, "check_device", lambda d: 132)
    monkeypatch.setattr(selection, "compute_capability", lambda d: 90)
    monkeypatch.setattr(selection, "card_of", lambda d: "H200")
    for m, first in ((2049, dense.name), (2561, dense.name), (3073, dense.name), (2112, tuned.name), (4096, tuned.name)):
        assert selection.ranked_tactics("fp16", "groupwise", 128, 2048, 2048, m, None)[0] == first, m
    assert selection.ranked_tactics("fp16", "groupwise", 128, 8192, 8192, 2049, None)[0] == tuned.name   # 67M: no rule
    monkeypatch.setenv(kernels.FORCE_SM80_ENV, "1")
    assert selection.ranked_tactics("fp16", "groupwise", 128, 2048, 2048, 2049, None)[0] == TILED.name


@pytest.mark.parametrize("m,n,first", [(1, 4096, "skinny80"), (8, 14336, "skinny80"), (16, 9216, "skinny80"),
                                       (16, 14336, "tiled"), (24, 4096, "skinny80"), (32, 16384, "tiled"),
                                       (64, 2048, "tiled"), (1, 128256, "skinny80"), (33, 2048, "tiled")])
def test_on_sm80_the_skinny80_kernels_go_first_only_where_a_rule_says(m, n, first):
    """Issue 18: the shipped table's skinny80 rules (measured through the PTX on the H200) put them
    first at small M on the layers measured; elsewhere the tiled kernels, which take any shape, come
    first (heuristics.json family_order; before it the families were ordered by name, which put
    skinny80 first everywhere it could take m)."""
    from w4a16_build import selection

    cands = [parse_name(x) for x in ("fp16_int4_groupwise_tiled_t64_r16_s4", "fp16_int4_groupwise_tiled_t128_r32_s3",
                                     "fp16_int4_groupwise_skinny80_m16_kw8_s2", "fp16_int4_groupwise_skinny80_m32_kw8_s2")]
    ranked = selection.rank_by_heuristic(cands, m, n, 108, dtype="fp16", mode="groupwise", group=128, k=4096)
    assert parse_name(ranked[0]).family == first, ranked


def test_the_tuner_compares_against_what_gemm_runs_on_hopper_with_the_sm80_ptx(monkeypatch, build):
    """Review (2026-11-28): tune() took the untuned choice from heuristic_order, which lacked the
    "Hopper's own kernels first" sort of ranked_tactics, so with the compute_80 PTX built it compared
    tuned choices against a skinny80 kernel gemm() never runs on Hopper."""
    from w4a16_build import selection, tuning

    skinny80 = parse_name("fp16_int4_groupwise_skinny80_m16_kw8_s2")
    cands = {c.name: c for c in (CUTLASS, SKINNY, TILED, skinny80)}
    monkeypatch.setattr(kernels, "family_archs",
                        lambda fam: ("80-real", "80-virtual") if fam in ("tiled", "skinny80") else ("90a-real",))
    monkeypatch.setattr(selection, "compiled", lambda: cands)
    monkeypatch.setattr(selection, "tactics", lambda dtype, mode: list(cands))
    monkeypatch.setattr(selection, "tuned_choices_memoized", lambda *a: {})
    monkeypatch.setattr(selection, "check_device", lambda d: 132)
    monkeypatch.setattr(selection, "compute_capability", lambda d: 90)
    monkeypatch.setattr(selection, "card_of", lambda d: "H100")
    first = selection.ranked_tactics("fp16", "groupwise", 128, 4096, 4096, 1, None)[0]
    assert "90a" in cands[first].archs
    assert tuning.heuristic_choice("fp16", "groupwise", 128, 4096, 4096, 1, 132, list(cands), cc=90, card="H100") == first


DENSE = parse_name("fp16_int4_groupwise_dequant_mm")


def test_a_family_of_both_archs_serves_hopper_by_its_own_code_and_ampere_by_sm80(build, monkeypatch):
    """The dense path (`dequant`, archs 90a and 80) is one plain kernel: its sm_90a code serves
    Hopper, its sm_80 code Ampere and Ada, and it is never a PTX fallback where its sm_90a code was
    built. W4A16_FORCE_SM80=1 keeps its meaning: on Hopper an SM80 family serves only through the
    compute_80 PTX of the build (a default build, without it, still says so)."""
    state = {"dequant": ("80-real", "90a-real")}
    monkeypatch.setattr(kernels, "family_archs", lambda fam: state.get(fam, ("90a-real",)))
    assert [cc for cc in (75, 80, 86, 89, 90, 100) if kernels.runs_on(DENSE, cc)] == [80, 86, 89, 90]
    assert not kernels.ptx_fallback(DENSE, 90)
    monkeypatch.setenv(kernels.FORCE_SM80_ENV, "1")
    assert not kernels.runs_on(DENSE, 90) and not kernels.runs_on(CUTLASS, 90)      # no PTX in this build
    state["dequant"] = ("80-real", "80-virtual", "90a-real")
    assert kernels.runs_on(DENSE, 90) and kernels.runs_on(DENSE, 86)
    monkeypatch.delenv(kernels.FORCE_SM80_ENV)
    assert kernels.runs_on(DENSE, 90) and not kernels.ptx_fallback(DENSE, 90)
    state["dequant"] = ("90a-real",)                  # a Hopper-only build
    assert [cc for cc in (80, 86, 90) if kernels.runs_on(DENSE, cc)] == [90]
    state["dequant"] = ("80-real", "80-virtual")      # no sm_90a code: Hopper through the PTX, as a fallback
    assert kernels.runs_on(DENSE, 90) and kernels.ptx_fallback(DENSE, 90)
    state["dequant"] = ("80-real",)                   # neither: nothing of it runs on Hopper
    assert not kernels.runs_on(DENSE, 90)
