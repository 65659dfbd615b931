"""The compiled kernels as the rest of the package sees them: the registry, device facts, the
problem handed to a kernel, and the one `launch()` that `gemm()` and the tuner both use.

Nothing here selects a tactic (selection.py) or checks a user's tensors (runner.py).

Workspace (stream-K tactics need one): each launch takes its own from PyTorch's caching
allocator on the current stream and drops it after the launch. That allocator is
stream-ordered, so the block is reused only by later work on the same stream (never
concurrently by another stream), and inside CUDA graph capture it comes from the graph's
private pool, which lives as long as the graph: a captured launch can never point at memory
that was freed and handed to someone else after capture (issue 12, item 1). A launch on a stream
other than the current one records its workspace on that stream. The dense path (`dequant`) uses
the workspace for the dequantized weight and finishes with torch's matmul (`dense_matmul`).
"""

from __future__ import annotations

import contextlib
import functools
import os
import re

import torch

from ._ext import build_info, ext
from .dtypes import name_of
from .packing import PackedWeight, padded_rows
from .schema import parse_name

ALIGN = 16  # bytes: TMA needs 16-byte aligned global addresses
# Every kernel indexes the padded weight (in 4-bit elements), x and out with 32-bit
# integers in places: a launch stays below this in each (csrc/w4a16/gemm_args.h).
INDEX_LIMIT = 1 << 31
LAUNCH_FAILED = 4  # Status::kLaunchFailed (csrc/w4a16/gemm_args.h)


class W4A16Error(RuntimeError):
    """A kernel refused or failed a call that passed the Python checks."""


class UnsupportedDeviceError(RuntimeError):
    pass


# ----------------------------------------------------------------------- registry


@functools.lru_cache(maxsize=None)
def compiled() -> dict:
    """{name: configuration} of every compiled kernel; the configuration is the generator's
    model parsed from the name (the registry holds names only)."""
    return {name: parse_name(name) for name in ext().list_kernels()}


def tactics(dtype, mode: str, device=None) -> list[str]:
    """Names of the compiled tactics for an activation dtype ("fp16", torch.bfloat16, ...) and
    quant mode; with `device`, only those whose family serves it (runs_on)."""
    try:
        dtype = name_of(dtype)
    except ValueError:
        return []
    names = [n for n, c in compiled().items() if c.dtype.short == dtype and c.mode.short == mode]
    if device is not None:
        cc = compute_capability(as_cuda_device(device))
        names = [n for n in names if runs_on(compiled()[n], cc)]
    return names


def fits(name: str, dtype: str, mode: str) -> bool:
    """Whether this build compiled `name` for this dtype and mode (a name from a cache or a
    table written elsewhere must not run a bf16 kernel on fp16 data)."""
    cfg = compiled().get(name)
    return cfg is not None and cfg.dtype.short == dtype and cfg.mode.short == mode


# ----------------------------------------------------------------------- devices


@functools.lru_cache(maxsize=None)
def _facts_of(index: int) -> tuple[int, int, str]:
    props = torch.cuda.get_device_properties(index)
    return props.major * 10 + props.minor, props.multi_processor_count, props.name


def _device_facts(device: torch.device) -> tuple[int, int, str]:
    """(compute capability, SM count, name) of a CUDA device (index None: the current one)."""
    return _facts_of(device.index if device.index is not None else torch.cuda.current_device())


# The cards that benchmark results and the heuristic table name by these short names, and their SM
# counts (the SXM cards the results were timed on; generator/tile_costs.py's SMS says the same).
CARDS = {"H100": 132, "H200": 132}


def short_card(name: str, sms: int | None = None) -> str:
    """A device name as results name its card: "H100" for "NVIDIA H100 80GB HBM3" (the name as a
    word: a GH200 is not an H200). A variant with another SM count is another card: "H100 (114
    SMs)" for an H100 PCIe, whose timings and waves are not the SXM card's. A card not in CARDS
    keeps its whole name."""
    key = next((k for k in CARDS if re.search(rf"\b{k}\b", name)), None)
    if key is None:
        return name
    return key if sms is None or sms == CARDS[key] else f"{key} ({sms} SMs)"


def card_of(device: torch.device) -> str:
    """The short card name (short_card) of a CUDA device, by its name and SM count."""
    _, sms, name = _device_facts(device)
    return short_card(name, sms)


def compute_capability(device: torch.device) -> int:
    """major * 10 + minor of a CUDA device (e.g. 90, 86)."""
    return _device_facts(device)[0]


def as_cuda_device(device=None) -> torch.device:
    """A CUDA device with an index from None (the current one), an int, "cuda", "cuda:1" or a
    torch.device."""
    if device is None:
        return torch.device("cuda", torch.cuda.current_device())
    d = torch.device("cuda", device) if isinstance(device, int) and not isinstance(device, bool) \
        else torch.device(device)
    if d.type != "cuda":
        raise ValueError(f"w4a16_build runs on CUDA devices, got {device!r}")
    return d if d.index is not None else torch.device("cuda", torch.cuda.current_device())


FORCE_SM80_ENV = "W4A16_FORCE_SM80"


def forced_sm80() -> bool:
    """W4A16_FORCE_SM80=1: only the families built for SM80 (the `skinny80`, `tiled` and `dequant`
    kernels) run, on any GPU, and on Hopper only where the build has their compute_80 PTX: how the
    Ampere/Ada path is tested on Hopper (issue 18). The `dequant` family also has sm_90a code, which
    the CUDA runtime prefers to the PTX, so there its sm_80 code is not what runs."""
    return os.environ.get(FORCE_SM80_ENV, "") == "1"


@functools.lru_cache(maxsize=None)
def family_archs(family: str) -> tuple[str, ...]:
    """The W4A16_CUDA_ARCHS entries this build compiled a family for (e.g. ("80-real",))."""
    return tuple(build_info().get("family_archs", {}).get(family, ()))


def runs_on(cfg, cc: int) -> bool:
    """Whether a kernel's family serves a GPU of compute capability cc (e.g. 86): the sm_90a
    families on sm_90 only; the SM80 families (`archs` "80") on 8.x through their sm_80 SASS
    ("80" or "80-real") and on newer GPUs through their compute_80 PTX ("80" or "80-virtual"),
    where the build has it; a family of both (`dequant`) also on sm_90 by its sm_90a code, where
    built. With W4A16_FORCE_SM80=1 only the SM80 families, each by the rule for SM80 code (on
    Hopper: only where the build has the compute_80 PTX, as without a 90a arch)."""
    if "80" in cfg.archs:
        entries = family_archs(cfg.family)
        sass = any(e in ("80", "80-real") for e in entries) and 80 <= cc < 90
        ptx = any(e in ("80", "80-virtual") for e in entries) and cc >= 80
        if sass or ptx:
            return True
    if "90a" not in cfg.archs or cc != 90 or forced_sm80():
        return False
    return "80" not in cfg.archs or _built_for_90a(cfg.family)


def _built_for_90a(family: str) -> bool:
    return any(e.split("-")[0] == "90a" for e in family_archs(family))


def ptx_fallback(cfg, cc: int) -> bool:
    """Whether a kernel serves this GPU only as a fallback: an SM80 family (compute_80 PTX through
    the JIT) on Hopper, whose own sm_90a kernels serve it unless W4A16_FORCE_SM80=1. The selection
    puts these after the GPU's own kernels, whatever a heuristic rule says."""
    if cc != 90 or forced_sm80():
        return False
    return "90a" not in cfg.archs or ("80" in cfg.archs and not _built_for_90a(cfg.family))


@functools.lru_cache(maxsize=None)
def _any_kernel_runs_on(cc: int, forced: bool) -> bool:
    """Whether some compiled kernel serves compute capability cc (check_device runs on every
    gemm() call: the scan over the registry is done once per cc and switch setting)."""
    return any(runs_on(c, cc) for c in compiled().values())


def check_device(device: torch.device) -> int:
    """The device's SM count; UnsupportedDeviceError unless this build has kernels for it: sm_90
    (Hopper) for the sm_90a families, sm_80 and newer for the SM80 ones (W4A16_CUDA_ARCHS)."""
    cc, sms, name = _device_facts(device)
    if cc < 80:
        raise UnsupportedDeviceError(
            f"{name} is sm_{cc}; w4a16_build's kernels need sm_80 or newer (Ampere, Ada, Hopper)")
    if not _any_kernel_runs_on(cc, forced_sm80()):
        archs = ext().build_info()["cuda_archs"]
        if forced_sm80():
            raise UnsupportedDeviceError(
                f"{FORCE_SM80_ENV}=1 on {name} (sm_{cc}) needs the SM80 kernels as compute_80 PTX; this build has "
                f"W4A16_CUDA_ARCHS={archs} (manifest {ext().build_info()['manifest']}): build with "
                "W4A16_CUDA_ARCHS='80-real;80-virtual;90a-real'")
        raise UnsupportedDeviceError(
            f"{name} is sm_{cc}; this build has no kernels for it (W4A16_CUDA_ARCHS={archs}): "
            + ("Hopper needs 90a-real" if cc == 90 else
               "Ampere and Ada need an 80 entry (80-real), newer GPUs the compute_80 PTX (80-virtual)"))
    return sms


def device_key(device: torch.device) -> tuple[str, int]:
    """(name, SM count): what a tuned choice is valid for."""
    _, sms, name = _device_facts(device)
    return name, sms


# ----------------------------------------------------------------------- problems


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


@functools.lru_cache(maxsize=None)
def _owning_problem_type():
    class Problem(ext().Problem):
        """The extension's Problem, holding the tensors its addresses point into (`tensors`): a
        Problem that outlived its x or out would hand a kernel memory the allocator has given to
        someone else (a stream-K workspace: tune() hung on one, issue 16)."""

    return Problem


def problem(x2: torch.Tensor, packed: PackedWeight, out2: torch.Tensor, bias: torch.Tensor | None = None, *,
            sms: int, piece: tuple[int, int, int, int] | None = None):
    """The extension's Problem for x2 [M, K] -> out2 [M, N], or for one piece (m0, m1, n0, n1) of
    it: x and out rows from m0, weight rows (and their scales, zeros, bias and out columns) from
    n0, with the full layer's row pitches. n0 is a multiple of 16, so every address stays
    aligned. The real addresses are passed even where a kernel reads nothing, as kernels check
    alignment. The Problem keeps x2, out2, bias and the weight's tensors alive as long as it lives."""
    k, n = packed.k, packed.n
    m0, m1, n0, n1 = piece if piece is not None else (0, x2.shape[0], 0, n)
    es = out2.element_size()
    prob = _owning_problem_type()(
        m=m1 - m0, n=n1 - n0, k=k, group_size=packed.group_size, sm_count=sms,
        x=x2.data_ptr() + m0 * k * es,
        w=packed.qweight.data_ptr() + n0 * k // 2,
        scales=packed.scales.data_ptr() + n0 * es,
        zeros=0 if packed.zeros is None else packed.zeros.data_ptr() + n0 * es,
        bias=0 if bias is None else bias.data_ptr() + n0 * es,
        out=out2.data_ptr() + (m0 * n + n0) * es,
        ld_out=n, ld_scales=n)
    prob.tensors = (x2, out2, bias, packed.qweight, packed.scales, packed.zeros)
    prob.piece = (m0, m1, n0, n1)
    return prob


def can_implement(name: str, prob) -> int:
    """The kernel's status for a problem (0: it can run it)."""
    return ext().can_implement(name, prob)


def status_string(status: int) -> str:
    text = ext().status_string(status)
    return f"{text} ({ext().last_launch_error()})" if status == LAUNCH_FAILED else text


DENSE_FAMILY = "dequant"   # its run() writes the dense weight only: launch() finishes with dense_matmul


def launch(name: str, prob, device: torch.device, stream: int | None = None) -> int:
    """Run one kernel on a problem on the current (or given) stream of `device`, with a workspace
    from the caller's stream and pool (module docstring); returns the status (0: launched)."""
    C = ext()
    ws_bytes = C.workspace_size(name, prob)
    # Kept alive until the launch is queued, then returned to the allocator in stream order.
    ws = torch.empty(ws_bytes, dtype=torch.uint8, device=device) if ws_bytes else None
    other = None      # the launch's stream where it is not the current one
    if stream is None:
        stream = torch.cuda.current_stream(device).cuda_stream
    elif ws is not None and stream != torch.cuda.current_stream(device).cuda_stream:
        # Allocated on the current stream: not handed out again before `stream` is done with it.
        other = torch.cuda.ExternalStream(stream, device=device)
        ws.record_stream(other)
    st = C.run(name, prob, workspace=0 if ws is None else ws.data_ptr(), workspace_bytes=ws_bytes, stream=stream)
    if st == 0 and compiled()[name].family == DENSE_FAMILY:
        dense_matmul(prob, ws, other)
    return st


def dense_matmul(prob, ws: torch.Tensor, other_stream=None) -> None:
    """The second half of a `dequant` tactic: its kernel wrote the piece's weight, dequantized, as a
    dense [n, k] matrix into the workspace `ws`; torch's matmul (cuBLAS) multiplies x by it into
    out (+ bias) on the launch's stream (the current one, or `other_stream`), queued before `ws`
    goes back to the allocator."""
    x2, out2, bias = prob.tensors[:3]
    m0, m1, n0, n1 = prob.piece
    k = prob.k
    w = ws.view(x2.dtype)[: (n1 - n0) * k].view(n1 - n0, k)
    xs, os_ = x2[m0:m1], out2[m0:m1, n0:n1]
    b = None if bias is None else bias[n0:n1]
    with contextlib.nullcontext() if other_stream is None else torch.cuda.stream(other_stream):
        if not os_.is_contiguous():             # a piece of a split layer: out rows have the full pitch
            os_.copy_(torch.nn.functional.linear(xs, w, b))
        elif b is None:
            torch.mm(xs, w.t(), out=os_)
        else:
            torch.addmm(b, xs, w.t(), out=os_)


def launch_or_raise(name: str, prob, device: torch.device, stream: int | None = None) -> None:
    st = launch(name, prob, device, stream)
    if st != 0:
        raise W4A16Error(f"tactic {name} failed: {status_string(st)}")
