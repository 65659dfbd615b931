"""`--estimate`: predicted build time, memory per job and binary size of a plan.

Costs are per generated file (shard), each family's in its model class (`cost`), fitted to a cold
`default` build on this project's 2-core, 24 GB build machine (nvcc 13.0, sm_90a, -O3, 2 jobs,
2026-11-28: benchmarks/results/build_default125_2core.json, 15 min 47 s; tests/generator/
test_estimate.py checks the constants against it):
- CUTLASS shard of n kernels: 32 + 14.3 n seconds of one core (least squares over its 26 files:
  mean 48 / 58 / 72 / 90 s for files of 1 / 2 / 3 / 4 kernels, largest 55 / 68 / 80 / 102 s) and
  3.6 + 1.5 n GB peak (5.1 / 6.6 / 8.1 / 9.6: at or above the largest seen, 4.8 / 6.6 / 7.5 / 9.0 GB,
  1024 MB to the GB). Front end and host compile are paid once per file (cudafe++ 11-16 s and host
  gcc 10-12 s, measured earlier). Seconds are each compile's wall time with 2 jobs on 2 cores.
- GEMV shard: 2.4 + 0.2 n s; skinny shard: 2.6 + 0.32 n s; 0.3 GB peak.
- A family compiled for several W4A16_CUDA_ARCHS entries (the SM80 ones, skinny80 and tiled: sm_80
  SASS and compute_80 PTX) pays its per-kernel seconds and size once per entry (archs.for_family);
  their constants are per entry (one build of default's 12 on the H200 machine: 8.9-10.1 s per file of
  three for two entries).
- Extension: about 115 KB per CUTLASS kernel, 45 KB per GEMV kernel, 0.3 MB fixed.
- Fixed: configure + binding + registry + link, about 40 s.
The wheel compresses the extension to about 25% (measured earlier: 6.8 MB -> 1.7 MB).
"""

from __future__ import annotations

import math
import os

from . import archs
from .model import FAMILIES
from .pipeline import Plan, Shard

FIXED_S = 40.0
BASE_SO_MB = 0.3
WHEEL_RATIO = 0.25


def arch_entries(cls, cuda_archs: str | None) -> int:
    """How many times a family's kernels compile (one per W4A16_CUDA_ARCHS entry it takes)."""
    return max(1, len(archs.for_family(cls, cuda_archs)))


def shard_cost(sh: Shard, cuda_archs: str | None = None) -> tuple[float, float]:
    """(CPU seconds, peak GB) to compile one generated file."""
    cls = type(sh.kernels[0])
    n, c = len(sh.kernels), cls.cost
    return c.file_s + c.kernel_s * n * arch_entries(cls, cuda_archs), c.file_gb + c.kernel_gb * n


def gb_per_job(plan: Plan) -> float:
    """Memory the build's job pool budgets per compile: the largest shard's peak (CMakeLists.txt
    reads it from manifest.json), at least the 4.5 GB of one CUTLASS kernel with some margin."""
    return round(max([4.5] + [shard_cost(sh, plan.cuda_archs)[1] for sh in plan.shards]), 2)


def machine() -> tuple[int, float]:
    cores = os.cpu_count() or 1
    mem_gb = 0.0
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    mem_gb = int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    return cores, mem_gb


def estimate(plan: Plan, cores: int | None = None, mem_gb: float | None = None) -> dict:
    c, m = machine()
    cores = cores or c
    mem_gb = mem_gb or m
    counts = {cls.family: sum(1 for k in plan.kernels if k.family == cls.family) for cls in FAMILIES}
    per_job = gb_per_job(plan)
    jobs = max(1, min(cores, int(mem_gb // per_job) if mem_gb else cores))
    costs = [shard_cost(sh, plan.cuda_archs) for sh in plan.shards]
    cpu_s = sum(t for t, _ in costs)
    # Wall time: the files spread over the jobs, but no faster than the slowest single file.
    wall_s = FIXED_S + max(cpu_s / jobs, max((t for t, _ in costs), default=0.0))
    peak = max((g for _, g in costs), default=0.0)
    so_mb = BASE_SO_MB + sum(counts[cls.family] * cls.cost.kernel_kb * arch_entries(cls, plan.cuda_archs)
                             for cls in FAMILIES) / 1024
    return {
        "manifest": plan.manifest.name, "kernels": counts, "files": len(plan.shards), "cores": cores,
        "memory_gb": round(mem_gb, 1), "jobs": jobs, "gb_per_job": per_job, "cpu_seconds": round(cpu_s),
        "wall_seconds": round(wall_s), "peak_gb_per_job": round(peak, 1),
        "peak_gb_total": round(sum(sorted((g for _, g in costs), reverse=True)[:jobs]), 1),
        "extension_mb": round(so_mb, 1), "wheel_mb": round(so_mb * WHEEL_RATIO, 1),
    }


def _kernel_counts(e: dict) -> str:
    """"69 cutlass + 20 gemv kernels": every family's count."""
    return " + ".join(f"{n} {fam}" for fam, n in e["kernels"].items()) + " kernels"


def format_estimate(e: dict) -> str:
    mins = e["wall_seconds"] / 60
    return (f"manifest {e['manifest']}: {_kernel_counts(e)}\n"
            f"  in {e['files']} files; this machine: {e['cores']} cores, {e['memory_gb']} GB -> "
            f"{e['jobs']} parallel compiles (~{e['gb_per_job']} GB each)\n"
            f"  build time  ~{math.ceil(mins)} min ({e['cpu_seconds']} CPU-seconds of compiles)\n"
            f"  peak memory ~{e['peak_gb_per_job']} GB per job, ~{e['peak_gb_total']} GB at once\n"
            f"  extension   ~{e['extension_mb']} MB, wheel ~{e['wheel_mb']} MB")


def one_line(e: dict) -> str:
    """The estimate as the build prints it at configure time."""
    return (f"estimate: about {math.ceil(e['wall_seconds'] / 60)} minutes of compiling on this machine "
            f"({_kernel_counts(e)} in {e['files']} files, "
            f"{e['jobs']} at once, ~{e['peak_gb_per_job']} GB each)")
