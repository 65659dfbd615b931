"""W4A16Linear and replace_linears without a GPU (construction, state, the fake op)."""

import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed")
from torch import nn  # noqa: E402

import w4a16_build  # noqa: E402
from w4a16_build.packing import dequantize_packed  # noqa: E402


@pytest.mark.parametrize("mode", ["per_column", "groupwise", "groupwise_zero"])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_from_linear_and_state_dict(mode, dtype):
    torch.manual_seed(0)
    lin = nn.Linear(256, 136, dtype=dtype)
    mod = w4a16_build.W4A16Linear.from_linear(lin, group_size=128, mode=mode)
    w = lin.weight.float()
    err = (dequantize_packed(mod.packed) - w).norm() / w.norm()
    assert err < 0.15  # 4-bit round to nearest
    assert torch.equal(mod.bias, lin.bias)
    r = repr(mod)
    assert "in_features=256" in r and "out_features=136" in r and f"mode={mode}" in r
    fresh = w4a16_build.W4A16Linear(256, 136, True, group_size=128, mode=mode, dtype=dtype)
    fresh.load_state_dict(mod.state_dict())
    for a, b in zip(fresh.state_dict().values(), mod.state_dict().values()):
        assert torch.equal(a, b)
    assert ("zeros" in mod.state_dict()) == (mode == "groupwise_zero")


def test_from_quantized():
    q = torch.randint(0, 16, (64, 128), dtype=torch.int8)
    s = torch.rand(64, 2, dtype=torch.float16) + 0.5
    z = torch.randint(0, 16, (64, 2)).half()
    b = torch.randn(64, dtype=torch.float16)
    mod = w4a16_build.W4A16Linear.from_quantized(q, s, z, b)
    assert mod.mode == "groupwise_zero" and mod.group_size == 64 and torch.equal(mod.bias, b)
    with pytest.raises(ValueError, match="bias"):
        w4a16_build.W4A16Linear.from_quantized(q, s, z, torch.zeros(3, dtype=torch.float16))


def test_bad_shapes():
    with pytest.raises(ValueError, match="in_features % 64"):
        w4a16_build.W4A16Linear(100, 64)
    with pytest.raises(ValueError, match="group_size"):
        w4a16_build.W4A16Linear(192, 64, group_size=128)


def test_replace_linears():
    model = nn.Sequential(nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 64), nn.Linear(100, 64),
                          nn.Sequential(nn.Linear(64, 64))).half()
    replaced = w4a16_build.replace_linears(model, lambda name, m: name != "4.0", group_size=64)
    assert sorted(replaced) == ["0", "2"]
    assert isinstance(model[0], w4a16_build.W4A16Linear) and isinstance(model[2], w4a16_build.W4A16Linear)
    assert isinstance(model[3], nn.Linear) and isinstance(model[4][0], nn.Linear)
    again = w4a16_build.replace_linears(model, group_size=64)
    assert list(again) == ["4.0"] and isinstance(model[4][0], w4a16_build.W4A16Linear)


def test_fake_op_shapes():
    x = torch.empty(2, 3, 256, dtype=torch.float16, device="meta")
    qw = torch.empty(128 * 128, dtype=torch.uint8, device="meta")
    s = torch.empty(2, 128, dtype=torch.float16, device="meta")
    out = torch.ops.w4a16.gemm(x, qw, s, None, None, 128, 256, 128, "groupwise", "")
    assert out.shape == (2, 3, 128) and out.device.type == "meta"
