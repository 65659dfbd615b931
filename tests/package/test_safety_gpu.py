"""Inputs that must be refused, and caches that must not be trusted, on the GPU
(issue 12, items 5, 6 and 8)."""

import json

import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed")

import w4a16_build  # noqa: E402
from w4a16_build import selection  # noqa: E402
from _weights import check, random_weight, reference  # noqa: E402

pytestmark = pytest.mark.gpu


def need(dtype, mode):
    if not w4a16_build.tactics(dtype, mode):
        pytest.skip(f"no {dtype} {mode} kernels in this build")


def test_out_aliasing_an_input_is_refused():
    """Item 8: out=x (or out over the weight) would be read and written by one launch."""
    need("fp16", "groupwise")
    w = random_weight(256, 256, "groupwise", 128, torch.float16)
    x = torch.randn(4, 256, device="cuda", dtype=torch.float16)
    before = x.clone()
    with pytest.raises(ValueError, match="overlap"):
        w4a16_build.gemm(x, w.packed, out=x)
    assert torch.equal(x, before)
    big = torch.randn(8, 256, device="cuda", dtype=torch.float16)
    with pytest.raises(ValueError, match="overlap"):
        w4a16_build.gemm(big[:4], w.packed, out=big[2:6])           # rows 2-3 shared
    qview = w.packed.qweight.view(torch.float16)[: 4 * 256].view(4, 256)
    with pytest.raises(ValueError, match="overlap"):
        w4a16_build.gemm(x, w.packed, out=qview)                    # over the weight
    x2 = torch.randn(2, 256, device="cuda", dtype=torch.float16)
    with pytest.raises(ValueError, match="overlap"):
        w4a16_build.gemm(x2, w.packed, out=w.packed.scales)         # over the scales [2, 256]


def test_custom_op_checks_sizes_against_tensors():
    """Item 5: torch.ops.w4a16.gemm with n larger than qweight holds used to read past it."""
    need("fp16", "groupwise")
    w = random_weight(256, 512, "groupwise", 128, torch.float16)
    p = w.packed
    x = torch.randn(2, 512, device="cuda", dtype=torch.float16)
    with pytest.raises(Exception, match="qweight|scales"):
        torch.ops.w4a16.gemm(x, p.qweight, p.scales, None, None, 4096, 512, 128, "groupwise", "")
    with pytest.raises(Exception, match="scales|group"):
        torch.ops.w4a16.gemm(x, p.qweight, p.scales, None, None, 256, 512, 64, "groupwise", "")
    out = torch.ops.w4a16.gemm(x, p.qweight, p.scales, None, None, 256, 512, 128, "groupwise", "")
    check(out, reference(x, w), "fp16", "valid call")


def write_cache(path, key, buckets):
    path.write_text(json.dumps({"format": "w4a16_build.tune/1", "entries": {key: buckets}}))


def shape_key(n, k, dtype="fp16", mode="groupwise", group=128):
    return selection.cache_key(torch.device("cuda", torch.cuda.current_device()),
                            w4a16_build.build_info()["build_hash"], dtype, mode, group, n, k)


def test_cached_tactic_of_another_dtype_is_not_run(tmp_path, monkeypatch):
    """Item 6: a cache entry naming a bf16 tactic for an fp16 shape gave garbage (rel. error 0.998)."""
    need("fp16", "groupwise")
    need("bf16", "groupwise")
    bf16 = w4a16_build.tactics("bf16", "groupwise", device="cuda")[0]
    cache = tmp_path / "tune.json"
    monkeypatch.setenv("W4A16_TUNE_CACHE", str(cache))
    write_cache(cache, shape_key(1024, 1024), {"4": {"tactic": bf16, "us": 1.0}})
    selection.clear_memo()
    w = random_weight(1024, 1024, "groupwise", 128, torch.float16)
    x = torch.randn(4, 1024, device="cuda", dtype=torch.float16)
    try:
        assert w4a16_build.runner.selected_tactic(x, w.packed) != bf16
        check(w4a16_build.gemm(x, w.packed), reference(x, w), "fp16", "with a foreign cached tactic")
    finally:
        selection.clear_memo()


def test_cache_with_a_bad_bucket_key_costs_nothing_but_speed(tmp_path, monkeypatch):
    """Item 6: a bucket key like "²" passes str.isdigit() and then broke every gemm() of the shape."""
    need("fp16", "groupwise")
    good = w4a16_build.tactics("fp16", "groupwise", device="cuda")[0]
    cache = tmp_path / "tune.json"
    monkeypatch.setenv("W4A16_TUNE_CACHE", str(cache))
    write_cache(cache, shape_key(512, 1024), {"²": {"tactic": good, "us": 1.0}, "٣": {"tactic": good, "us": 1.0}})
    selection.clear_memo()
    w = random_weight(512, 1024, "groupwise", 128, torch.float16)
    x = torch.randn(2, 1024, device="cuda", dtype=torch.float16)
    try:
        check(w4a16_build.gemm(x, w.packed), reference(x, w), "fp16", "with a bad bucket key")
    finally:
        selection.clear_memo()


def test_tune_accepts_a_device_string(tmp_path, monkeypatch):
    """Item 6: tune(device="cuda:0") raised inside torch.device()."""
    need("fp16", "groupwise")
    monkeypatch.setenv("W4A16_TUNE_CACHE", str(tmp_path / "tune.json"))
    for dev in ("cuda:0", "cuda", 0, torch.device("cuda:0")):
        res = w4a16_build.tune(256, 256, "fp16", "groupwise", 128, m_values=[1], device=dev, progress=False)
        assert set(res) == {1}
    selection.clear_memo()
