"""`gemm()`: run a W4A16 GEMM through a compiled tactic, with every check a user needs.

The binding below this is thin (raw pointers, sizes, a stream handle); this
layer validates devices, dtypes, shapes, alignment and the tactic, keeps one
reusable workspace per device and runs on the current torch stream. Nothing
is launched, and `out` is not touched, unless every check passed.
"""

from __future__ import annotations

import functools
import math

import torch

from ._ext import ext
from .packing import PackedWeight

ALIGN = 16  # bytes: TMA needs 16-byte aligned global addresses


class W4A16Error(RuntimeError):
    """A kernel refused or failed a call that passed the Python checks."""


class UnsupportedDeviceError(RuntimeError):
    pass


@functools.lru_cache(maxsize=None)
def _device_facts(index: int) -> tuple[int, int, str]:
    props = torch.cuda.get_device_properties(index)
    return props.major * 10 + props.minor, props.multi_processor_count, props.name


def _check_device(device: torch.device) -> int:
    cc, sms, name = _device_facts(device.index if device.index is not None else torch.cuda.current_device())
    if cc != 90:
        raise UnsupportedDeviceError(
            f"{name} is sm_{cc}; w4a16_build's kernels are built for Hopper (sm_90a: H100/H200)")
    return sms


@functools.lru_cache(maxsize=None)
def _kernels() -> dict[str, dict]:
    return {k["name"]: dict(k) for k in ext().list_kernels()}


def tactics(dtype: str | torch.dtype, mode: str) -> list[str]:
    """Names of the compiled tactics for an activation dtype and quant mode."""
    if isinstance(dtype, torch.dtype):
        dtype = {torch.float16: "fp16", torch.bfloat16: "bf16"}.get(dtype, str(dtype))
    return [n for n, k in _kernels().items() if k["dtype"] == dtype and k["mode"] == mode]


class _Workspace:
    """One growing workspace buffer per device, reused across calls."""

    def __init__(self):
        self.buffers: dict[int, torch.Tensor] = {}

    def get(self, device: torch.device, nbytes: int) -> tuple[int, int]:
        if nbytes == 0:
            return 0, 0
        buf = self.buffers.get(device.index)
        if buf is None or buf.numel() < nbytes:
            size = max(nbytes, 1 << 20)
            buf = torch.empty(size, dtype=torch.uint8, device=device)
            self.buffers[device.index] = buf
        return buf.data_ptr(), buf.numel()


_workspace = _Workspace()


def _tensor_check(name, t, device, dtype=None, shape=None):
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if t.device != device:
        raise ValueError(f"{name} is on {t.device}, expected {device} (all tensors on one CUDA device)")
    if dtype is not None and t.dtype != dtype:
        raise TypeError(f"{name} has dtype {t.dtype}, expected {dtype}")
    if shape is not None and tuple(t.shape) != tuple(shape):
        raise ValueError(f"{name} has shape {tuple(t.shape)}, expected {tuple(shape)}")
    if not t.is_contiguous():
        raise ValueError(f"{name} must be contiguous (call .contiguous())")
    if t.data_ptr() % ALIGN:
        raise ValueError(f"{name} data must be {ALIGN}-byte aligned (address {t.data_ptr():#x})")


def pointers(x: torch.Tensor, packed: PackedWeight, out: torch.Tensor,
             bias: torch.Tensor | None = None) -> dict[str, int]:
    """The addresses the extension's can_implement / workspace_size / run take (they check
    alignment, so the real tensors' addresses are passed even where nothing is read)."""
    return dict(x=x.data_ptr(), w=packed.qweight.data_ptr(), scales=packed.scales.data_ptr(),
                zeros=0 if packed.zeros is None else packed.zeros.data_ptr(),
                bias=0 if bias is None else bias.data_ptr(), out=out.data_ptr())


def selected_tactic(x: torch.Tensor, packed: PackedWeight, bias: torch.Tensor | None = None) -> str:
    """The tactic gemm(x, packed, bias) would run, after the same checks; runs nothing."""
    return gemm(x, packed, bias, _dry_run=True)


def gemm(x: torch.Tensor, packed: PackedWeight, bias: torch.Tensor | None = None,
         tactic: str | None = None, out: torch.Tensor | None = None, *, _dry_run: bool = False):
    """out[..., N] = x[..., K] @ dequant(W)^T (+ bias), on the current CUDA stream.

    x: CUDA tensor, fp16 or bf16 (the dtype the weight was packed for), any
    leading dims, contiguous. bias: [N] in x's dtype or None. tactic: a kernel
    name from `list_kernels()`, or None: the tuned choice if this shape was
    tuned (`w4a16_build.tune`), else the shipped heuristic (tuning.py). out: optional
    [..., N] output buffer, contiguous, x's dtype.
    """
    if not isinstance(packed, PackedWeight):
        raise TypeError(f"packed must be a PackedWeight (from w4a16_build.pack), got {type(packed).__name__}")
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_cuda:
        raise ValueError(f"x is on {x.device}: w4a16_build runs on CUDA tensors only")
    device = x.device
    if x.dtype != packed.dtype:
        raise TypeError(f"x has dtype {x.dtype} but the weight was packed for {packed.dtype}")
    if x.dim() < 1 or x.shape[-1] != packed.k:
        raise ValueError(f"x has K = {x.shape[-1] if x.dim() else None}, the weight has K = {packed.k}")
    n, k = packed.n, packed.k
    lead = tuple(x.shape[:-1])
    m = math.prod(lead)
    _tensor_check("packed.qweight", packed.qweight, device, torch.uint8)
    _tensor_check("packed.scales", packed.scales, device, packed.dtype)
    if packed.zeros is not None:
        _tensor_check("packed.zeros", packed.zeros, device, packed.dtype)
    if bias is not None:
        _tensor_check("bias", bias, device, x.dtype, (n,))
    if out is not None:
        _tensor_check("out", out, device, x.dtype, lead + (n,))
    if m == 0:
        if _dry_run:
            return None
        return out if out is not None else x.new_empty(lead + (n,))
    _tensor_check("x", x, device)
    sms = _check_device(device)

    x2 = x.reshape(m, k)
    out_t = out if out is not None else torch.empty(lead + (n,), dtype=x.dtype, device=device)
    ptrs = pointers(x2, packed, out_t, bias)
    C = ext()
    problem = (m, n, k, packed.group_size)

    if tactic is None:
        from .tuning import select_tactic

        tactic = select_tactic(
            packed.dtype_name, packed.mode, packed.group_size, n, k, m, device,
            lambda t: C.can_implement(t, *problem, **ptrs, sm_count=sms) == 0)
        if tactic is None:
            raise W4A16Error(f"no compiled {packed.dtype_name} {packed.mode} kernel can run M={m}, N={n}, "
                             f"K={k}, group_size={packed.group_size} (manifest {C.build_info()['manifest']})")
    else:
        info = _kernels().get(tactic)
        if info is None:
            raise ValueError(f"unknown tactic {tactic!r}; compiled {packed.dtype_name} {packed.mode} tactics: "
                             f"{', '.join(tactics(packed.dtype_name, packed.mode)) or 'none'}")
        if info["dtype"] != packed.dtype_name or info["mode"] != packed.mode:
            raise ValueError(f"tactic {tactic} is for {info['dtype']} {info['mode']}, the weight is "
                             f"{packed.dtype_name} {packed.mode}")
        st = C.can_implement(tactic, *problem, **ptrs, sm_count=sms)
        if st != 0:
            raise ValueError(f"tactic {tactic} cannot run M={m}, N={n}, K={k}, group_size={packed.group_size}: "
                             f"{C.status_string(st)}")

    if _dry_run:
        return tactic
    ws_bytes = C.workspace_size(tactic, *problem, **ptrs, sm_count=sms)
    ws_ptr, ws_cap = _workspace.get(device, ws_bytes)
    stream = torch.cuda.current_stream(device).cuda_stream
    st = C.run(tactic, *problem, **ptrs, sm_count=sms, workspace=ws_ptr, workspace_bytes=ws_cap, stream=stream)
    if st != 0:
        raise W4A16Error(f"tactic {tactic} failed: {C.status_string(st)}")
    return out_t
