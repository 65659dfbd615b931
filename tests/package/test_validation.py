"""Bad input is refused with an exception that names it, before anything reaches a kernel
(issue 12, items 5 and 8). No GPU needed."""

import dataclasses

import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed")

import w4a16_build  # noqa: E402
from w4a16_build.packing import PackedWeight  # noqa: E402


def packed(mode="groupwise", n=48, k=256, group=128, dtype=torch.float16):
    g = torch.Generator().manual_seed(0)
    if mode == "groupwise_zero":
        q = torch.randint(0, 16, (n, k), generator=g, dtype=torch.int8)
        z = torch.randint(0, 16, (n, k // group), generator=g).to(dtype)
    else:
        q = torch.randint(-8, 8, (n, k), generator=g, dtype=torch.int8)
        z = None
    s = (torch.rand((n,) if mode == "per_column" else (n, k // group), generator=g) + 0.5).to(dtype)
    return w4a16_build.pack(q, s, z, mode=mode, dtype=dtype)


@pytest.mark.parametrize("change, match", [
    (dict(n=64), "qweight"),                      # claims more rows than qweight holds
    (dict(k=512), "qweight"),                     # claims more K
    (dict(n=40), "scales"),                       # fewer rows: scales no longer match
    (dict(group_size=64), "scales"),              # more groups than scales has
    (dict(group_size=96), "group"),               # not a multiple of 64
    (dict(mode="groupwise_zero"), "zeros"),       # a zero mode without zeros
    (dict(mode="per_column", group_size=256), "scales"),
    (dict(mode="per_column"), "group"),
    (dict(mode="int3"), "mode"),
    (dict(n=44), "multiple of 8"),
    (dict(k=200), "multiple of 64"),
    (dict(dtype=torch.float32), "dtype"),
])
def test_packed_weight_sizes_are_checked(change, match):
    """Item 5: n, k, group_size, mode are checked against the tensors when a PackedWeight is made."""
    p = packed()
    with pytest.raises((ValueError, TypeError), match=match):
        dataclasses.replace(p, **change)


def test_packed_weight_tensors_are_checked():
    p = packed("groupwise_zero")
    with pytest.raises(ValueError, match="qweight"):
        dataclasses.replace(p, qweight=p.qweight[:-16])
    with pytest.raises(TypeError, match="qweight"):
        dataclasses.replace(p, qweight=p.qweight.view(torch.int8))
    with pytest.raises(ValueError, match="zeros"):
        dataclasses.replace(p, zeros=p.zeros[:, :-8])
    with pytest.raises(TypeError, match="scales"):
        dataclasses.replace(p, scales=p.scales.float())
    with pytest.raises(ValueError, match="zeros"):
        dataclasses.replace(packed("groupwise"), zeros=p.zeros)   # zeros in a mode without them
    for mode in ("per_column", "groupwise", "groupwise_zero"):
        q = packed(mode)
        # a valid one is accepted
        PackedWeight(**{f.name: getattr(q, f.name) for f in dataclasses.fields(q)})


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_pack_refuses_non_finite_scales(bad):
    """Item 8: NaN/inf scales or zeros give NaN outputs; refuse them at pack()."""
    q = torch.randint(-8, 8, (16, 128), dtype=torch.int8)
    s = torch.full((16, 1), 0.01)
    s[3, 0] = bad
    with pytest.raises(ValueError, match="finite"):
        w4a16_build.pack(q, s, dtype=torch.float16)
    z = torch.full((16, 1), 8.0)
    z[5, 0] = bad
    with pytest.raises(ValueError, match="finite"):
        w4a16_build.pack(q + 8, torch.full((16, 1), 0.01), z, dtype=torch.float16)


def test_pack_refuses_scales_that_overflow_the_dtype():
    """Item 8: fp32 scales (or pre-multiplied zeros) beyond fp16's range would become inf."""
    q = torch.randint(-8, 8, (16, 128), dtype=torch.int8)
    with pytest.raises(ValueError, match="float16"):
        w4a16_build.pack(q, torch.full((16, 1), 1e5), dtype=torch.float16)
    # s fits fp16, but the stored zero (8 - z) * s = 8e4 does not.
    z = torch.zeros(16, 1)
    with pytest.raises(ValueError, match="float16"):
        w4a16_build.pack(q + 8, torch.full((16, 1), 1e4), z, dtype=torch.float16)
    # The same numbers fit bf16.
    w4a16_build.pack(q + 8, torch.full((16, 1), 1e4), z, dtype=torch.bfloat16)


def test_pack_refuses_empty_scale_groups():
    """Item 8: scales with zero groups raised ZeroDivisionError."""
    q = torch.randint(-8, 8, (16, 128), dtype=torch.int8)
    with pytest.raises(ValueError, match="group"):
        w4a16_build.pack(q, torch.empty(16, 0), dtype=torch.float16)
    from w4a16_build.checkpoints import layer_from_gptq

    with pytest.raises(ValueError):
        layer_from_gptq(torch.zeros(16, 16, dtype=torch.int32), torch.zeros(0, 2, dtype=torch.int32),
                        torch.empty(0, 16, dtype=torch.float16))


def test_w4a16linear_refuses_replaced_buffers_of_the_wrong_size():
    """Item 5: the custom op rebuilds a PackedWeight from the layer's buffers: a buffer of the
    wrong size is refused there, not read past on the GPU."""
    lin = w4a16_build.W4A16Linear(256, 48, bias=False, group_size=128)
    lin.qweight = torch.zeros(16, dtype=torch.uint8)
    with pytest.raises(ValueError, match="qweight"):
        lin.packed


@pytest.mark.parametrize("shape, match", [((12, 128), "multiple of 8"), ((16, 100), "multiple of 64")])
def test_quantize_refuses_shapes_the_kernels_cannot_take(shape, match):
    """Issue 13: quantize() accepted N = 12 or K = 100 and only pack() refused them later."""
    with pytest.raises(ValueError, match=match):
        w4a16_build.quantize(torch.randn(*shape), 64 if shape[1] % 64 == 0 else None, "per_column")


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_quantize_refuses_non_finite_weights(bad):
    """Issue 13: a NaN or inf weight gave NaN scales."""
    w = torch.randn(16, 128)
    w[2, 5] = bad
    with pytest.raises(ValueError, match="NaN or inf"):
        w4a16_build.quantize(w, 64, "groupwise")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without a GPU")
def test_tune_without_a_gpu_says_so():
    """Issue 13: tune() raised torch's raw driver error on a machine without a GPU."""
    with pytest.raises(w4a16_build.UnsupportedDeviceError, match="no CUDA GPU"):
        w4a16_build.tune(256, 256, "fp16", "groupwise", 128)
