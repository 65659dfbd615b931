"""quantize / pack on the CPU: checked against plain loop references."""

import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed")

from w4a16_build.packing import pack, padded_rows, unpack_codes, dequantize_packed  # noqa: E402
from w4a16_build.quant import dequantize, quantize  # noqa: E402


def reference_nibble_offset(n_idx, k_idx, k):
    """The layout written out by hand from the docstring (independent of the
    permute-based implementation)."""
    r, m = divmod(n_idx, 16)
    c, kk = divmod(k_idx, 16)
    m0, m1 = m % 8, m // 8
    k0, k1, k2 = kk % 2, (kk // 2) % 4, kk // 8
    return 256 * (c + r * (k // 16)) + 32 * m0 + 8 * k1 + 4 * k0 + 2 * k2 + m1


def reference_pack_bytes(codes, n, k):
    np_ = padded_rows(n)
    nib = [0] * (np_ * k)
    for i in range(n):
        for j in range(k):
            nib[reference_nibble_offset(i, j, k)] = int(codes[i, j]) & 0xF
    return bytes(nib[2 * b] | (nib[2 * b + 1] << 4) for b in range(len(nib) // 2))


@pytest.mark.parametrize("n, k", [(16, 64), (24, 128), (40, 64)])
def test_pack_matches_reference_layout(n, k):
    g = torch.Generator().manual_seed(n * 1000 + k)
    q = torch.randint(-8, 8, (n, k), generator=g, dtype=torch.int8)
    s = torch.rand(n, k // 64, generator=g) + 0.5
    p = pack(q, s.half(), group_size=64)
    assert bytes(p.qweight.tolist()) == reference_pack_bytes(q, n, k)
    assert p.qweight.numel() == padded_rows(n) * k // 2


def test_atom_words_hold_one_threads_fragment():
    # Thread 5 of a warp holds rows 1 and 9, k 2,3,10,11 of a 16x16 atom
    # (PTX wgmma A fragment); its 8 nibbles are word 5, in order [0,2,4,6,1,3,5,7].
    k = 64
    vals = {}
    for (row, col) in [(1, 2), (1, 3), (9, 2), (9, 3), (1, 10), (1, 11), (9, 10), (9, 11)]:
        vals[reference_nibble_offset(row, col, k)] = (row, col)
    assert sorted(vals) == list(range(40, 48))
    order = [vals[o] for o in range(40, 48)]
    frag = [(1, 2), (1, 3), (9, 2), (9, 3), (1, 10), (1, 11), (9, 10), (9, 11)]
    assert order == [frag[i] for i in (0, 2, 4, 6, 1, 3, 5, 7)]


@pytest.mark.parametrize("mode, group", [("per_column", None), ("groupwise", 64), ("groupwise", 128),
                                         ("groupwise_zero", 64), ("groupwise_zero", 128)])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_round_trip(mode, group, dtype):
    torch.manual_seed(0)
    w = torch.randn(72, 256)
    q, s, z = quantize(w, group, mode, clip_search=False)  # the plain bound: half a step
    lo, hi = (0, 15) if mode == "groupwise_zero" else (-8, 7)
    assert q.min() >= lo and q.max() <= hi
    ref = dequantize(q, s, z, mode=mode)
    # 4-bit RTN: error bounded by half a step.
    step = (w.abs().max() / 7.5) if mode != "groupwise_zero" else (w.max() - w.min()) / 15
    assert (ref - w).abs().max() <= step * 0.51 + 1e-6
    p = pack(q, s.to(dtype), None if z is None else z.to(dtype), mode=mode, dtype=dtype)
    assert p.mode == mode and p.group_size == (256 if mode == "per_column" else group)
    codes = unpack_codes(p)
    expect = q.to(torch.int8) - 8 if mode == "groupwise_zero" else q
    assert torch.equal(codes, expect)
    # What the kernels compute from the packed data equals the quantized weight
    # (up to storing scales/zeros in the activation dtype).
    ref_d = dequantize(q, s.to(dtype), None if z is None else z.to(dtype), mode=mode)
    tol = 1e-2 if dtype == torch.bfloat16 else 2e-3
    assert torch.allclose(dequantize_packed(p), ref_d, rtol=tol, atol=tol * ref_d.abs().max())


def test_nibble_packed_input():
    torch.manual_seed(1)
    q = torch.randint(0, 16, (32, 128), dtype=torch.uint8)
    nib = (q[:, 0::2] | (q[:, 1::2] << 4)).contiguous()
    s = torch.rand(32, 2).half() + 0.5
    z = torch.randint(0, 16, (32, 2)).half()
    a = pack(q, s, z)
    b = pack(nib, s, z, nibbles_packed=True)
    assert torch.equal(a.qweight, b.qweight) and torch.equal(a.zeros, b.zeros)


@pytest.mark.parametrize("kwargs, err, match", [
    (dict(q=torch.zeros(30, 128, dtype=torch.int8), scales=torch.ones(30, 2)), ValueError, "multiple of 8"),
    (dict(q=torch.zeros(32, 100, dtype=torch.int8), scales=torch.ones(32, 1)), ValueError, "multiple of 64"),
    (dict(q=torch.zeros(32, 128), scales=torch.ones(32, 2)), TypeError, "integer codes"),
    (dict(q=torch.zeros(32, 128, dtype=torch.int8), scales=torch.ones(32, 4)), ValueError, "group size 32"),
    (dict(q=torch.zeros(32, 128, dtype=torch.int8), scales=torch.ones(32, 2), group_size=128), ValueError,
     "disagrees"),
    (dict(q=torch.full((32, 128), 9, dtype=torch.int8), scales=torch.ones(32, 2)), ValueError, r"\[-8, 7\]"),
    (dict(q=torch.zeros(32, 128, dtype=torch.int8), scales=torch.ones(32, 2), mode="groupwise_zero"),
     ValueError, "needs zeros"),
    (dict(q=torch.zeros(32, 128, dtype=torch.int8), scales=torch.ones(32, 2), dtype=torch.float32),
     TypeError, "float16 or torch.bfloat16"),
    (dict(q=torch.zeros(32, 128, dtype=torch.int8), scales=torch.ones(32, 2), mode="rowwise"),
     ValueError, "unknown quant mode"),
])
def test_pack_rejects(kwargs, err, match):
    with pytest.raises(err, match=match):
        pack(**kwargs)


@pytest.mark.parametrize("mode", ["per_column", "groupwise", "groupwise_zero"])
def test_clip_search_never_worse(mode):
    torch.manual_seed(3)
    w = torch.randn(64, 512)
    w[0, 0] = 12.0  # an outlier
    errs = []
    for clip in (False, True):
        q, s, z = quantize(w, 128, mode, clip_search=clip)
        errs.append((dequantize(q, s, z, mode=mode) - w).square().sum().item())
    assert errs[1] <= errs[0] * (1 + 1e-6)
