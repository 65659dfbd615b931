"""`gemm()`: run a W4A16 GEMM through a compiled tactic, with every check a user needs.

The binding below this is thin (raw addresses, sizes, a stream handle); this layer validates
devices, dtypes, shapes, alignment, aliasing and the tactic, makes x's device current for the
launch, splits problems whose indices would pass 2^31 into pieces (kernels.pieces), selects a
tactic per piece (tuning.select_tactic: selection.py, after tuning where W4A16_TUNE=1 asks),
and launches on the current torch stream (kernels.launch: the per-call workspace is argued there). Nothing is
launched, and `out` is not touched, unless every check passed.
"""

from __future__ import annotations

import logging
import math

import torch

from . import selection
from ._ext import build_info
from .kernels import (ALIGN, FORCE_SM80_ENV, LAUNCH_FAILED, W4A16Error, can_implement, check_device, compiled,
                      compute_capability, forced_sm80, launch, pieces, problem, runs_on, status_string, tactics)
from .packing import PackedWeight
from .tuning import select_tactic

__all__ = ["gemm", "selected_tactic"]

log = logging.getLogger("w4a16_build")


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


def _span(t: torch.Tensor) -> tuple[int, int]:
    start = t.data_ptr()
    return start, start + t.numel() * t.element_size()


def _check_no_overlap(out: torch.Tensor, **inputs) -> None:
    """A launch reads its inputs while it writes out: memory shared by both is refused."""
    o0, o1 = _span(out)
    for name, t in inputs.items():
        if t is None or t.numel() == 0:
            continue
        a, b = _span(t)
        if a < o1 and o0 < b:
            raise ValueError(f"out overlaps {name} in memory; pass a separate output buffer")


def selected_tactic(x: torch.Tensor, packed: PackedWeight, bias: torch.Tensor | None = None) -> str:
    """The tactic gemm(x, packed, bias) would run (for its first piece), after the same checks;
    runs nothing."""
    return gemm(x, packed, bias, _dry_run=True)


def gemm(x: torch.Tensor, packed: PackedWeight, bias: torch.Tensor | None = None,
         tactic: str | None = None, out: torch.Tensor | None = None, *, _dry_run: bool = False):
    """out[..., N] = x[..., K] @ dequant(W)^T (+ bias), on the current CUDA stream.

    x: CUDA tensor, fp16 or bf16 (the dtype the weight was packed for), any
    leading dims, contiguous. bias: [N] in x's dtype or None. tactic: a kernel
    name from `list_kernels()`, or None: the tuned choice if this shape was
    tuned (`w4a16_build.tune`), else the shipped heuristic (selection.py); if that
    kernel's launch is refused, the next candidate runs. out: optional [..., N]
    output buffer, contiguous, x's dtype, sharing no memory with the inputs.
    """
    if not isinstance(packed, PackedWeight):
        raise TypeError(f"packed must be a PackedWeight (from w4a16_build.pack), got {type(packed).__name__}")
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_cuda:
        raise ValueError(f"x is on {x.device}: w4a16_build runs on CUDA tensors only")
    packed.validate()  # sizes against tensors: cheap, and a PackedWeight's fields can be replaced
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
        _check_no_overlap(out, x=x, qweight=packed.qweight, scales=packed.scales, zeros=packed.zeros, bias=bias)
    if tactic is not None:
        cfg = compiled().get(tactic)
        if cfg is None:
            raise ValueError(f"unknown tactic {tactic!r}; compiled {packed.dtype_name} {packed.mode} tactics: "
                             f"{', '.join(tactics(packed.dtype_name, packed.mode)) or 'none'}")
        if cfg.dtype.short != packed.dtype_name or cfg.mode.short != packed.mode:
            raise ValueError(f"tactic {tactic} is for {cfg.dtype.short} {cfg.mode.short}, the weight is "
                             f"{packed.dtype_name} {packed.mode}")
    if m == 0:
        if _dry_run:
            return None
        return out if out is not None else x.new_empty(lead + (n,))
    _tensor_check("x", x, device)
    sms = check_device(device)
    cfg = compiled()[tactic] if tactic is not None else None
    if cfg is not None and not runs_on(cfg, compute_capability(device)):
        raise ValueError(f"tactic {tactic} ({cfg.family}, built for {'/'.join('sm_' + a for a in cfg.archs)}) "
                         f"does not run on {torch.cuda.get_device_name(device)}"
                         + (f" with {FORCE_SM80_ENV}=1" if forced_sm80() else ""))
    parts = pieces(m, n, k)
    if torch.cuda.current_device() != device.index:
        # Kernels launch on, and CUTLASS queries, the current device: make it x's.
        with torch.cuda.device(device.index):
            return _run(x, packed, bias, tactic, out, lead, m, sms, parts, _dry_run)
    return _run(x, packed, bias, tactic, out, lead, m, sms, parts, _dry_run)


def _run(x, packed, bias, tactic, out, lead, m, sms, parts, dry_run):
    n, k, g = packed.n, packed.k, packed.group_size
    dtype, mode = packed.dtype_name, packed.mode
    device = x.device
    x2 = x.reshape(m, k)
    out_t = out if out is not None else torch.empty(lead + (n,), dtype=x.dtype, device=device)
    out2 = out_t.view(m, n)
    # Every piece is checked and given its tactic before the first launch: a refusal leaves
    # out untouched.
    plan = []
    for piece in parts:
        prob = problem(x2, packed, out2, bias, sms=sms, piece=piece)

        def applicable(t, prob=prob):
            return can_implement(t, prob) == 0

        if tactic is None:
            name = select_tactic(dtype, mode, g, prob.n, k, prob.m, device, applicable)
            if name is None:
                raise W4A16Error(f"no compiled {dtype} {mode} kernel can run M={prob.m}, N={prob.n}, K={k}, "
                                 f"group_size={g} (manifest {build_info()['manifest']})")
        else:
            name = tactic
            st = can_implement(name, prob)
            if st != 0:
                raise ValueError(f"tactic {name} cannot run M={prob.m}, N={prob.n}, K={k}, group_size={g}: "
                                 f"{status_string(st)}")
        if dry_run:
            return name
        plan.append((name, prob, applicable))
    stream = torch.cuda.current_stream(device).cuda_stream
    for name, prob, applicable in plan:
        st = launch(name, prob, device, stream)
        if st == LAUNCH_FAILED and tactic is None:
            # The selection never fails on a problem some compiled tactic can run: a kernel whose
            # launch is refused (e.g. a resource limit of this device) is replaced by the next one.
            log.warning("w4a16_build: %s could not launch: %s; trying the next tactic", name, status_string(st))
            selection.remember_refused(dtype, mode, g, prob.n, k, device, name)
            for alt in selection.ranked_tactics(dtype, mode, g, prob.n, k, prob.m, device):
                if alt == name or not applicable(alt):
                    continue
                st = launch(alt, prob, device, stream)
                if st == 0:
                    selection.remember_choice(dtype, mode, g, prob.n, k, prob.m, device, alt)
                if st != LAUNCH_FAILED:
                    name = alt
                    break
        if st != 0:
            raise W4A16Error(f"tactic {name} failed: {status_string(st)}")
    return out_t
