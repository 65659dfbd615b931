"""Summarize a build's compile log into build_report.json (build tooling, run by CMake).

    python build_report.py --log compile_log.jsonl --plan generated/manifest.json --so _C.so --out build_report.json

Per generated file of this build (the plan's "files"): compile seconds,
peak memory (MB) and object bytes, from the last compile of that file in the
log (so an incremental build reports the newest numbers); files of earlier
builds in the same directory are left out; totals; the extension's size. The report stays in the build
tree next to the extension; it is not put in the wheel, whose bytes must not
depend on timings.
"""

from __future__ import annotations

import argparse
import json
import os

try:
    from .plan_files import kernel_files, other_files
except ImportError:  # run as a script by CMake
    from plan_files import kernel_files, other_files


def _source_of(obj: str) -> str:
    """CMake's object path ends in the source's own name plus ".o"."""
    return os.path.basename(obj)[: -len(".o")] if obj.endswith(".o") else os.path.basename(obj)


def _kernel_sources(plan: dict) -> set[str]:
    """File names of the generated kernel files (the plan's "files", written by the generator)."""
    return {os.path.basename(f) for f in kernel_files(plan)}


def _current_sources(plan: dict) -> set[str]:
    """Names of the files this build compiles: generated ones and the binding's."""
    other = {os.path.basename(f) for f in other_files(plan)}
    return _kernel_sources(plan) | other | {"bindings.cpp", "status.cpp"}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--log", required=True)
    ap.add_argument("--plan", required=True)
    ap.add_argument("--so", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    latest = {}
    if os.path.exists(a.log):
        for line in open(a.log):
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if rec.get("object"):
                # By source file: the same source compiled into another target's directory (the
                # per-family object libraries of 2026-11-28) is the same file, its last compile counts.
                latest[_source_of(rec["object"])] = rec
    plan = json.load(open(a.plan))
    # Only the files of this build: a build directory reused after a manifest change still has
    # log lines of files that are no longer compiled.
    current = _current_sources(plan)
    latest = {s: r for s, r in latest.items() if s in current}
    files = sorted(latest.values(), key=lambda r: r["object"])
    kernel_sources = _kernel_sources(plan)
    kernels = [r for r in files if _source_of(r["object"]) in kernel_sources]
    report = {
        "manifest": plan["manifest"], "manifest_sha256": plan["manifest_sha256"], "kernel_count": plan["count"],
        "shards": [{"object": os.path.basename(r["object"]), "seconds": r["seconds"], "peak_mb": r["peak_mb"],
                    "bytes": r["bytes"]} for r in kernels],
        "totals": {
            "compile_seconds": round(sum(r["seconds"] for r in files), 1),
            "kernel_compile_seconds": round(sum(r["seconds"] for r in kernels), 1),
            "max_peak_mb": max((r["peak_mb"] for r in files), default=None),
            "object_bytes": sum(r["bytes"] or 0 for r in files),
        },
        "extension_bytes": os.path.getsize(a.so) if os.path.exists(a.so) else None,
    }
    with open(a.out, "w") as f:
        json.dump(report, f, indent=1)
    t = report["totals"]
    print(f"w4a16: build report {a.out}: {len(kernels)} kernel files, {t['kernel_compile_seconds']} s of kernel "
          f"compiles, peak {t['max_peak_mb']} MB per compile, extension {report['extension_bytes']} bytes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
