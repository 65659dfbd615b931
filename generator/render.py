"""render -> write only what changed -> remove leftovers -> file list for CMake.

Output tree (always inside the build tree, never the source tree):

    OUT/kernels/<kernel name>.cu   one per shard: the kernel's name, or <first kernel>__shard.cu
                                   for up to kernels_per_file kernels
    OUT/registry.cpp               the table of every kernel, with the manifest hash
    OUT/sources.txt                the .cu/.cpp files CMake compiles, one per line
    OUT/manifest.json              the plan: manifest name, sha256, kernels

A file is rewritten only when its bytes change, so an unchanged kernel keeps
its timestamp and is not recompiled; files of kernels no longer in the plan
are deleted.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from .paths import display_path, templates_dir
from .estimate import gb_per_job
from .pipeline import Plan

MANAGED_SUFFIXES = (".cu",)


@dataclasses.dataclass
class RenderResult:
    written: list[str]
    unchanged: list[str]
    removed: list[str]
    sources: list[str]


def _env():
    import jinja2  # imported here so that --list needs no jinja2 start-up

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )


def write_if_changed(path: Path, text: str) -> bool:
    data = text.encode()
    if path.is_file() and path.read_bytes() == data:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
    return True


def plan_json(plan: Plan) -> dict:
    m = plan.manifest
    return {
        "manifest": m.name,
        "manifest_path": display_path(m.path),
        "manifest_sha256": m.sha256,
        "count": len(plan.kernels),
        "kernels_per_file": m.kernels_per_file,
        "mib_per_job": round(gb_per_job(plan) * 1024),  # CMakeLists.txt sizes its compile job pool by it
        "kernels": [k.to_dict() for k in plan.kernels],
    }


def render(plan: Plan, out_dir: str | Path) -> RenderResult:
    out = Path(out_dir)
    env = _env()
    m = plan.manifest
    files: dict[Path, str] = {}
    templates = {"cutlass": env.get_template("cutlass_kernels.cu.j2"),
                 "gemv": env.get_template("gemv_kernels.cu.j2")}
    for sh in plan.shards:
        files[out / "kernels" / sh.filename] = templates[sh.kernels[0].family].render(
            manifest_name=m.name, kernels=sh.kernels)
    files[out / "registry.cpp"] = env.get_template("registry.cpp.j2").render(
        manifest_name=m.name, manifest_path=display_path(m.path),
        manifest_sha256=m.sha256, kernels=plan.kernels)
    sources = sorted(str(p.relative_to(out)) for p in files)
    files[out / "sources.txt"] = "".join(s + "\n" for s in sources)
    files[out / "manifest.json"] = json.dumps(plan_json(plan), indent=1, sort_keys=True) + "\n"

    result = RenderResult([], [], [], sources)
    for path, text in files.items():
        (result.written if write_if_changed(path, text) else result.unchanged).append(
            str(path.relative_to(out)))
    kdir = out / "kernels"
    if kdir.is_dir():
        for p in sorted(kdir.iterdir()):
            if p.suffix in MANAGED_SUFFIXES and p not in files:
                p.unlink()
                result.removed.append(str(p.relative_to(out)))
    return result
