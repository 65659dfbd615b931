"""Reading the generated files a plan lists (manifest.json "files", written by render.py).

Shared by the build tools CMake runs as scripts (compile_wrapper.py, build_report.py): no
relative imports, so it loads both as `generator.plan_files` and beside a script.
"""

from __future__ import annotations


def kernel_files(plan: dict) -> list[str]:
    """The generated kernel files of every family, relative to the plan's directory."""
    return [f for files in plan.get("files", {}).get("kernels", {}).values() for f in files]


def other_files(plan: dict) -> list[str]:
    """The other generated sources (registry.cpp)."""
    return list(plan.get("files", {}).get("other", []))
