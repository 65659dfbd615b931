"""GPTQ / AWQ import. The test packs tensors itself, from the published formats
(independently of the importer), and checks what comes out exactly."""

import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed")

import w4a16_build  # noqa: E402
from w4a16_build.checkpoints import unpack_awq, unpack_gptq  # noqa: E402
from w4a16_build.packing import dequantize_packed  # noqa: E402

AWQ_ORDER = [0, 2, 4, 6, 1, 3, 5, 7]


def to_int32(v: int) -> int:
    return v - (1 << 32) if v >= 1 << 31 else v


def gptq_pack(q, z, zeros_minus_one=True):
    """q [N, K], z [N, G] in 0..15 -> qweight [K/8, N], qzeros [G, N/8] (AutoGPTQ layout)."""
    n, k = q.shape
    g = z.shape[1]
    qweight = torch.zeros(k // 8, n, dtype=torch.int32)
    for r in range(k // 8):
        for col in range(n):
            v = 0
            for i in range(8):
                v |= int(q[col, 8 * r + i]) << (4 * i)
            qweight[r, col] = to_int32(v)
    qzeros = torch.zeros(g, n // 8, dtype=torch.int32)
    for j in range(g):
        for c in range(n // 8):
            v = 0
            for i in range(8):
                zz = int(z[8 * c + i, j]) - (1 if zeros_minus_one else 0)
                v |= (zz & 0xF) << (4 * i)
            qzeros[j, c] = to_int32(v)
    return qweight, qzeros


def awq_pack(q, z):
    """q [N, K], z [N, G] -> qweight [K, N/8], qzeros [G, N/8] (AutoAWQ GEMM layout)."""
    n, k = q.shape
    g = z.shape[1]

    def pack_cols(mat):  # mat [rows, N] -> [rows, N/8]
        out = torch.zeros(mat.shape[0], n // 8, dtype=torch.int32)
        for row in range(mat.shape[0]):
            for c in range(n // 8):
                v = 0
                for i in range(8):
                    v |= int(mat[row, 8 * c + AWQ_ORDER[i]]) << (4 * i)
                out[row, c] = to_int32(v)
        return out

    return pack_cols(q.t()), pack_cols(z.t())


def reference(q, z, s, g_idx=None):
    n, k = q.shape
    g = k // s.shape[1]
    gi = g_idx.long() if g_idx is not None else torch.arange(k) // g
    return (q.float() - z.float()[:, gi]) * s.float()[:, gi]


def sample(n=32, k=256, g=64, seed=0, symmetric=False):
    """Codes, zeros and scales of a real asymmetric (or symmetric: zero 8) min/max quantization of
    random weights, as GPTQ/AWQ checkpoints hold them: q in 0..15, z in 1..15."""
    gen = torch.Generator().manual_seed(seed)
    w = (torch.randn(n, k, generator=gen) * 0.05).reshape(n, k // g, g)
    if symmetric:
        s = w.abs().amax(-1) / 7.5
        z = torch.full((n, k // g), 8.0)
    else:
        lo, hi = w.amin(-1).clamp(max=0), w.amax(-1).clamp(min=0)
        s = (hi - lo) / 15
        z = (-lo / s).round().clamp(1, 15)
    q = (w / s.unsqueeze(-1) + z.unsqueeze(-1)).round().clamp(0, 15).reshape(n, k).to(torch.int8)
    return q, z.to(torch.int8), s.half()


def scatter_groups(q, g_idx):
    """Codes quantized with contiguous groups, moved so that column k sits in group g_idx[k], as
    in an act-order checkpoint (column j of q, group j // g, goes to the j-th column of that
    group in g_idx order)."""
    out = torch.empty_like(q)
    out[:, torch.argsort(g_idx.long(), stable=True)] = q
    return out


def test_gptq_unpack_is_exact():
    q, z, s = sample()
    qw, qz = gptq_pack(q, z)
    q2, z2, s2, _ = unpack_gptq(qw, qz, s.t().contiguous())
    assert torch.equal(q2, q) and torch.equal(z2.to(torch.int8), z) and torch.equal(s2, s)


def test_gptq_zeros_as_is():
    q, z, s = sample(seed=1)
    qw, qz = gptq_pack(q, z, zeros_minus_one=False)
    _, z2, _, _ = unpack_gptq(qw, qz, s.t().contiguous(), zeros_minus_one=False)
    assert torch.equal(z2.to(torch.int8), z)


def test_awq_unpack_is_exact():
    q, z, s = sample(seed=2)
    qw, qz = awq_pack(q, z)
    q2, z2, s2 = unpack_awq(qw, qz, s.t().contiguous())
    assert torch.equal(q2, q) and torch.equal(z2, z) and torch.equal(s2, s)


@pytest.mark.parametrize("fmt", ["gptq", "awq"])
def test_load_quantized_dict_and_file(fmt, tmp_path):
    q, z, s = sample(seed=3)
    qw, qz = gptq_pack(q, z) if fmt == "gptq" else awq_pack(q, z)
    bias = torch.randn(32).half()
    tensors = {"model.layers.0.mlp.qweight": qw, "model.layers.0.mlp.qzeros": qz,
               "model.layers.0.mlp.scales": s.t().contiguous(), "model.layers.0.mlp.bias": bias,
               "other.weight": torch.zeros(3)}
    save_file = pytest.importorskip("safetensors.torch", reason="safetensors is not installed "
                                    "(pip install .[test])").save_file

    path = tmp_path / "m.safetensors"
    save_file(tensors, str(path))
    for src in (tensors, path):
        layers = w4a16_build.load_quantized(src, prefix="model.")
        assert list(layers) == ["layers.0.mlp"]
        mod = layers["layers.0.mlp"]
        assert mod.mode == "groupwise_zero" and mod.group_size == 64 and torch.equal(mod.bias, bias)
        ref = reference(q, z, s)
        got = dequantize_packed(mod.packed)
        assert torch.allclose(got, ref, atol=2e-3 * ref.abs().max())


@pytest.mark.parametrize("symmetric", [False, True])
def test_gptq_v1_and_v2_are_told_apart_by_the_data(symmetric):
    """Issue 17 item 2: with no label, the zero-point convention comes from the data (the median
    of mean code - stored zero over the groups: ~1 for v1, ~0 for v2); both load exactly."""
    from w4a16_build.checkpoints import gptq_zeros_minus_one_from_data

    q, z, s = sample(n=64, k=512, seed=7, symmetric=symmetric)
    ref = reference(q, z, s)
    for minus_one in (True, False):
        qw, qz = gptq_pack(q, z, zeros_minus_one=minus_one)
        decided, offset = gptq_zeros_minus_one_from_data(qw, qz, s.t().contiguous())
        assert decided == minus_one and abs(offset - (1 if minus_one else 0)) < 0.3, offset
        mod = w4a16_build.load_quantized({"l.qweight": qw, "l.qzeros": qz, "l.scales": s.t().contiguous()})[
            "l"]
        got = dequantize_packed(mod.packed)
        assert torch.allclose(got, ref, atol=2e-3 * ref.abs().max())
        # The override wins over the data: the other convention is one step off everywhere.
        wrong = w4a16_build.load_quantized({"l.qweight": qw, "l.qzeros": qz, "l.scales": s.t().contiguous()},
                                           gptq_zeros_minus_one=not minus_one)["l"]
        assert not torch.allclose(dequantize_packed(wrong.packed), ref, atol=2e-3 * ref.abs().max())


def test_a_checkpoint_whose_layers_disagree_is_refused():
    q, z, s = sample(seed=8)
    a = gptq_pack(q, z, zeros_minus_one=True)
    b = gptq_pack(q, z, zeros_minus_one=False)
    tensors = {"a.qweight": a[0], "a.qzeros": a[1], "a.scales": s.t().contiguous(),
               "b.qweight": b[0], "b.qzeros": b[1], "b.scales": s.t().contiguous()}
    with pytest.raises(ValueError, match=r"1 layers look like v1 .*a\).* 1 like v2 .*b\).*gptq_zeros_minus_one"):
        w4a16_build.load_quantized(tensors)
    assert sorted(w4a16_build.load_quantized(tensors, gptq_zeros_minus_one=False)) == ["a", "b"]


def half_step_off(n=32, k=256, g=64, seed=0):
    """Codes whose group means sit exactly half a step above the zero: the data cannot tell
    v1 from v2 (offset 0.5 either way)."""
    q, z, s = sample(n, k, g, seed)
    zz = z.clamp(max=14)
    alt = (torch.arange(k) % 2).to(torch.int8)          # z, z+1, z, z+1, ... in every group
    q = zz.repeat_interleave(g, dim=1) + alt
    return q, zz, s


def test_symmetric_zeros_decide_exactly():
    """A symmetric checkpoint stores 8 (v2) or 7 (v1) everywhere: that decides even where the
    codes' mean sits half a step off the zero, which the median rule cannot call."""
    from w4a16_build.checkpoints import gptq_zeros_minus_one_from_data

    q, z, s = sample(seed=9, symmetric=True)
    for minus_one in (True, False):
        qw, qz = gptq_pack(q, z, zeros_minus_one=minus_one)
        assert gptq_zeros_minus_one_from_data(qw, qz, s.t().contiguous())[0] == minus_one
    skewed = (8 + torch.arange(q.shape[1]) % 2).to(torch.int8).expand_as(q).contiguous()   # mean 8.5
    qw, qz = gptq_pack(skewed, z, zeros_minus_one=False)
    assert gptq_zeros_minus_one_from_data(qw, qz, s.t().contiguous())[0] is False


@pytest.mark.parametrize("bad, match", [(-1, r"g_idx must hold group indices in \[0, 4\), got values in \[-1"),
                                        (4, r"got values in \[0, 4\]")])
def test_a_g_idx_out_of_range_is_a_clear_error(bad, match):
    q, z, s = sample(seed=12)
    qw, qz = gptq_pack(q, z)
    g_idx = (torch.arange(256) // 64).to(torch.int32)
    g_idx[3] = bad
    with pytest.raises(ValueError, match=match):
        w4a16_build.load_quantized({"l.qweight": qw, "l.qzeros": qz, "l.scales": s.t().contiguous(), "l.g_idx": g_idx},
                                   gptq_zeros_minus_one=True)


def test_data_that_cannot_tell_v1_from_v2_is_refused_unless_told():
    from w4a16_build.checkpoints import gptq_zeros_minus_one_from_data, layer_from_gptq

    q, z, s = half_step_off()
    qw, qz = gptq_pack(q, z, zeros_minus_one=False)
    decided, offset = gptq_zeros_minus_one_from_data(qw, qz, s.t().contiguous())
    assert decided is None and abs(offset - 0.5) < 1e-6
    with pytest.raises(ValueError, match=r"cannot tell v1 .* from v2 \(median offset 0.50"):
        layer_from_gptq(qw, qz, s.t().contiguous())
    with pytest.raises(ValueError, match=r"^l \(gptq\): GPTQ zero points: the data cannot tell"):
        w4a16_build.load_quantized({"l.qweight": qw, "l.qzeros": qz, "l.scales": s.t().contiguous()})
    mod = layer_from_gptq(qw, qz, s.t().contiguous(), zeros_minus_one=False)
    assert torch.allclose(dequantize_packed(mod.packed), reference(q, z, s), atol=2e-3)


@pytest.mark.parametrize("minus_one", [True, False])
def test_a_layer_the_data_cannot_tell_follows_the_layers_it_can(minus_one):
    qa, za, sa = sample(seed=10)
    qb, zb, sb = half_step_off(seed=11)
    zb = zb + 1 if minus_one else zb        # stored zb either way: offset 0.5 against what is stored
    a = gptq_pack(qa, za, zeros_minus_one=minus_one)
    b = gptq_pack(qb, zb, zeros_minus_one=minus_one)
    layers = w4a16_build.load_quantized({"a.qweight": a[0], "a.qzeros": a[1], "a.scales": sa.t().contiguous(),
                                         "b.qweight": b[0], "b.qzeros": b[1], "b.scales": sb.t().contiguous()})
    assert list(layers) == ["a", "b"]
    ref = reference(qb, zb, sb)
    assert torch.allclose(dequantize_packed(layers["b"].packed), ref, atol=2e-3 * ref.abs().max())


def test_gptq_act_order():
    q, z, s = sample(seed=4)
    k, g = 256, 64
    gen = torch.Generator().manual_seed(5)
    g_idx = (torch.arange(k) // g)[torch.randperm(k, generator=gen)].to(torch.int32)
    q = scatter_groups(q, g_idx)
    qw, qz = gptq_pack(q, z)
    mod = w4a16_build.layer_from_gptq(qw, qz, s.t().contiguous(), g_idx)
    assert mod.input_perm is not None and "act_order=True" in repr(mod)
    w_ref = reference(q, z, s, g_idx)
    x = torch.randn(5, k)
    y_ref = x @ w_ref.t()
    y = x[:, mod.input_perm] @ dequantize_packed(mod.packed).t()
    assert torch.allclose(y, y_ref, atol=1e-2 * y_ref.abs().max())


@pytest.mark.parametrize("break_it, match", [
    (lambda t: t.update(qweight=t["qweight"].float()), "qweight must be torch.int32"),
    (lambda t: t.update(qzeros=t["qzeros"][:, :-1]), "qzeros must have shape"),
    (lambda t: t.update(g_idx=torch.zeros(256, dtype=torch.int32)), "g_idx does not assign"),
    (lambda t: t.pop("scales"), "no scales"),
])
def test_gptq_bad_tensors(break_it, match):
    q, z, s = sample(seed=6)
    qw, qz = gptq_pack(q, z)
    t = {"qweight": qw, "qzeros": qz, "scales": s.t().contiguous()}
    break_it(t)
    with pytest.raises((TypeError, ValueError), match=match):
        w4a16_build.load_quantized({f"l.{k}": v for k, v in t.items()}, format="gptq")


@pytest.mark.gpu
@pytest.mark.parametrize("fmt", ["gptq", "awq", "gptq_act_order"])
def test_imported_layer_on_gpu(fmt):
    q, z, s = sample(n=64, k=512, g=128, seed=7)
    g_idx = None
    if fmt == "gptq_act_order":
        gen = torch.Generator().manual_seed(8)
        g_idx = (torch.arange(512) // 128)[torch.randperm(512, generator=gen)].to(torch.int32)
        q = scatter_groups(q, g_idx)
    qw, qz = awq_pack(q, z) if fmt == "awq" else gptq_pack(q, z)
    if fmt == "awq":
        mod = w4a16_build.layer_from_awq(qw, qz, s.t().contiguous())
    else:
        mod = w4a16_build.layer_from_gptq(qw, qz, s.t().contiguous(), g_idx)
    mod = mod.cuda()
    x = torch.randn(7, 512, device="cuda", dtype=torch.float16)
    ref = x.float() @ reference(q, z, s, g_idx).cuda().t()
    err = ((mod(x).float() - ref).norm() / ref.norm()).item()
    assert err < 2e-3, err


def test_prefix_matches_whole_names():
    """Issue 12 item 8: prefix="model.layers.1" also took layers 10 and 11."""
    q, z, s = sample(seed=9)
    qw, qz = gptq_pack(q, z)
    tensors = {}
    for i in (1, 10, 11):
        tensors.update({f"model.layers.{i}.mlp.qweight": qw, f"model.layers.{i}.mlp.qzeros": qz,
                        f"model.layers.{i}.mlp.scales": s.t().contiguous()})
    assert list(w4a16_build.load_quantized(tensors, prefix="model.layers.1")) == ["mlp"]
    assert list(w4a16_build.load_quantized(tensors, prefix="model.layers.1.")) == ["mlp"]
    assert list(w4a16_build.load_quantized(tensors, prefix="model.layers.1.mlp")) == [""]
    assert sorted(w4a16_build.load_quantized(tensors, prefix="model.layers")) == [
        "1.mlp", "10.mlp", "11.mlp"]
    assert list(w4a16_build.load_quantized(tensors, prefix="model.lay")) == []


@pytest.mark.parametrize("strict", [True, False])
def test_act_order_survives_a_state_dict_round_trip(strict):
    """Item 8: input_perm was not restored by load_state_dict (strict raised, non-strict dropped
    it silently: wrong outputs)."""
    q, z, s = sample(seed=10)
    gen = torch.Generator().manual_seed(11)
    g_idx = (torch.arange(256) // 64)[torch.randperm(256, generator=gen)].to(torch.int32)
    qw, qz = gptq_pack(q, z)
    mod = w4a16_build.layer_from_gptq(qw, qz, s.t().contiguous(), g_idx)
    fresh = w4a16_build.W4A16Linear(256, 32, bias=False, group_size=64, mode="groupwise_zero")
    fresh.load_state_dict(mod.state_dict(), strict=strict)
    assert fresh.input_perm is not None and torch.equal(fresh.input_perm, mod.input_perm)
    x = torch.randn(3, 256)
    w = dequantize_packed(fresh.packed)
    y_ref = x @ reference(q, z, s, g_idx).t()
    assert torch.allclose(x[:, fresh.input_perm] @ w.t(), y_ref, atol=1e-2 * y_ref.abs().max())


def test_bad_input_perm_is_refused():
    lin = w4a16_build.W4A16Linear(256, 32, bias=False, group_size=64, mode="groupwise_zero")
    with pytest.raises(ValueError, match="permutation"):
        lin.set_input_perm(torch.zeros(256, dtype=torch.int64))
    sd = lin.state_dict()
    sd["input_perm"] = torch.arange(256) + 1
    with pytest.raises((ValueError, RuntimeError), match="permutation"):
        lin.load_state_dict(sd)
