"""`gemm()`: run a W4A16 GEMM through a compiled tactic, with every check a user needs.

The binding below this is thin (raw pointers, sizes, a stream handle); this
layer validates devices, dtypes, shapes, alignment, aliasing and the tactic,
makes x's device current for the launch, splits problems whose indices would
pass 2^31 into pieces, and runs on the current torch stream. Nothing is
launched, and `out` is not touched, unless every check passed.

Workspace (stream-K tactics need one): each call takes its own from PyTorch's
caching allocator on the current stream and drops it after the launch. That
allocator is stream-ordered, so the block is reused only by later work on the
same stream (never concurrently by another stream), and inside CUDA graph
capture it comes from the graph's private pool, which lives as long as the
graph: a captured launch can never point at memory that was freed and handed
to someone else after capture (issue 12, item 1).
"""

from __future__ import annotations

import functools
import logging
import math

import torch

from ._ext import ext
from .packing import PackedWeight, padded_rows

log = logging.getLogger("w4a16_build")

ALIGN = 16  # bytes: TMA needs 16-byte aligned global addresses
# Every kernel indexes the padded weight (in 4-bit elements), x and out with 32-bit
# integers in places: a launch stays below this in each (csrc/w4a16/gemm_args.h).
INDEX_LIMIT = 1 << 31
LAUNCH_FAILED = 4  # Status::kLaunchFailed (csrc/w4a16/gemm_args.h)


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


def pointers(x: torch.Tensor, packed: PackedWeight, out: torch.Tensor,
             bias: torch.Tensor | None = None) -> dict[str, int]:
    """The addresses the extension's can_implement / workspace_size / run take (they check
    alignment, so the real tensors' addresses are passed even where nothing is read)."""
    return dict(x=x.data_ptr(), w=packed.qweight.data_ptr(), scales=packed.scales.data_ptr(),
                zeros=0 if packed.zeros is None else packed.zeros.data_ptr(),
                bias=0 if bias is None else bias.data_ptr(), out=out.data_ptr())


def pieces(m: int, n: int, k: int) -> list[tuple[int, int, int, int]]:
    """(m0, m1, n0, n1) pieces of a problem such that each launch indexes less than
    INDEX_LIMIT weight nibbles (padded to 16 rows), x elements and out elements.
    Almost every layer is one piece; a 2^31-nibble LM head is two."""
    rows = n
    if padded_rows(n) * k >= INDEX_LIMIT:
        rows = (INDEX_LIMIT - 1) // k // 16 * 16   # piece boundaries on whole 16-row atoms
        if rows < 16:
            raise ValueError(f"K = {k} is too large: 16 weight rows of it pass 2^31 elements")
    pitch = max(k, n)                               # x rows have k elements, out rows n
    toks = m if m * pitch < INDEX_LIMIT else (INDEX_LIMIT - 1) // pitch
    if toks < 1:
        raise ValueError(f"N = {n} is too large: one output row passes 2^31 elements")
    return [(m0, min(m0 + toks, m), n0, min(n0 + rows, n))
            for m0 in range(0, m, toks) for n0 in range(0, n, rows)]


def _piece_pointers(x2, packed: PackedWeight, out2, bias, m0: int, n0: int) -> dict[str, int]:
    """Addresses of one piece: x and out rows from m0, weight rows (and their scales, zeros,
    bias and out columns) from n0. n0 is a multiple of 16, so every address stays aligned."""
    k, n = packed.k, packed.n
    es = out2.element_size()
    return dict(x=x2.data_ptr() + m0 * k * es,
                w=packed.qweight.data_ptr() + n0 * k // 2,
                scales=packed.scales.data_ptr() + n0 * es,
                zeros=0 if packed.zeros is None else packed.zeros.data_ptr() + n0 * es,
                bias=0 if bias is None else bias.data_ptr() + n0 * es,
                out=out2.data_ptr() + (m0 * n + n0) * es,
                ld_out=n, ld_scales=n)


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
    tuned (`w4a16_build.tune`), else the shipped heuristic (tuning.py); if that
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
        info = _kernels().get(tactic)
        if info is None:
            raise ValueError(f"unknown tactic {tactic!r}; compiled {packed.dtype_name} {packed.mode} tactics: "
                             f"{', '.join(tactics(packed.dtype_name, packed.mode)) or 'none'}")
        if info["dtype"] != packed.dtype_name or info["mode"] != packed.mode:
            raise ValueError(f"tactic {tactic} is for {info['dtype']} {info['mode']}, the weight is "
                             f"{packed.dtype_name} {packed.mode}")
    if m == 0:
        if _dry_run:
            return None
        return out if out is not None else x.new_empty(lead + (n,))
    _tensor_check("x", x, device)
    sms = _check_device(device)
    parts = pieces(m, n, k)
    if torch.cuda.current_device() != device.index:
        # Kernels launch on, and CUTLASS queries, the current device: make it x's.
        with torch.cuda.device(device.index):
            return _run(x, packed, bias, tactic, out, lead, m, sms, parts, _dry_run)
    return _run(x, packed, bias, tactic, out, lead, m, sms, parts, _dry_run)


def _run(x, packed, bias, tactic, out, lead, m, sms, parts, dry_run):
    n, k, g = packed.n, packed.k, packed.group_size
    device = x.device
    x2 = x.reshape(m, k)
    out_t = out if out is not None else torch.empty(lead + (n,), dtype=x.dtype, device=device)
    out2 = out_t.view(m, n)
    C = ext()
    # Every piece is checked and given its tactic before the first launch: a refusal leaves
    # out untouched.
    plan = []
    for m0, m1, n0, n1 in parts:
        ptrs = _piece_pointers(x2, packed, out2, bias, m0, n0)
        pm, pn = m1 - m0, n1 - n0

        def applicable(t, pm=pm, pn=pn, ptrs=ptrs):
            return C.can_implement(t, pm, pn, k, g, **ptrs, sm_count=sms) == 0

        if tactic is None:
            from .tuning import select_tactic

            name = select_tactic(packed.dtype_name, packed.mode, g, pn, k, pm, device, applicable)
            if name is None:
                raise W4A16Error(f"no compiled {packed.dtype_name} {packed.mode} kernel can run M={pm}, N={pn}, "
                                 f"K={k}, group_size={g} (manifest {C.build_info()['manifest']})")
        else:
            name = tactic
            st = C.can_implement(name, pm, pn, k, g, **ptrs, sm_count=sms)
            if st != 0:
                raise ValueError(f"tactic {name} cannot run M={pm}, N={pn}, K={k}, group_size={g}: "
                                 f"{C.status_string(st)}")
        if dry_run:
            return name
        plan.append((name, pm, pn, ptrs, applicable))
    stream = torch.cuda.current_stream(device).cuda_stream
    for name, pm, pn, ptrs, applicable in plan:
        st = _launch(C, name, pm, pn, k, g, ptrs, sms, device, stream)
        if st == LAUNCH_FAILED and tactic is None:
            # The selection never fails on a problem some compiled tactic can run: a kernel whose
            # launch is refused (e.g. a resource limit of this device) is replaced by the next one.
            from .tuning import ranked_tactics, remember_choice

            log.warning("w4a16_build: %s could not launch (%s); trying the next tactic", name,
                        C.last_launch_error())
            for alt in ranked_tactics(packed.dtype_name, packed.mode, g, pn, k, pm, device):
                if alt == name or not applicable(alt):
                    continue
                st = _launch(C, alt, pm, pn, k, g, ptrs, sms, device, stream)
                if st == 0:
                    remember_choice(packed.dtype_name, packed.mode, g, pn, k, pm, device, alt)
                if st != LAUNCH_FAILED:
                    name = alt
                    break
        if st != 0:
            detail = f" ({C.last_launch_error()})" if st == LAUNCH_FAILED else ""
            raise W4A16Error(f"tactic {name} failed: {C.status_string(st)}{detail}")
    return out_t


def _launch(C, name, m, n, k, g, ptrs, sms, device, stream) -> int:
    ws_bytes = C.workspace_size(name, m, n, k, g, **ptrs, sm_count=sms)
    # Per call, from the caller's stream and memory pool (see the module docstring); kept
    # alive until the launch is queued, then returned in stream order.
    ws = torch.empty(ws_bytes, dtype=torch.uint8, device=device) if ws_bytes else None
    return C.run(name, m, n, k, g, **ptrs, sm_count=sms, workspace=0 if ws is None else ws.data_ptr(),
                 workspace_bytes=ws_bytes, stream=stream)
