"""gemm() input checks that need no GPU."""

import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed")
import w4a16_build  # noqa: E402


def weight():
    q = torch.zeros(64, 128, dtype=torch.int8)
    return w4a16_build.pack(q, torch.ones(64, 1, dtype=torch.float16))


def test_cpu_tensors_are_refused():
    with pytest.raises(ValueError, match="CUDA tensors only"):
        w4a16_build.gemm(torch.zeros(2, 128, dtype=torch.float16), weight())


def test_not_a_packed_weight():
    with pytest.raises(TypeError, match="PackedWeight"):
        w4a16_build.gemm(torch.zeros(2, 128, dtype=torch.float16), torch.zeros(64, 64))
