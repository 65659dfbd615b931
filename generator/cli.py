"""Command line: list or generate the kernels of a manifest.

    python -m w4a16_build.generate --list                       # default manifest
    python -m w4a16_build.generate --list --manifest full --json
    python -m w4a16_build.generate --manifest full --out DIR    # sources + file list
    python -m w4a16_build.generate --list --rejected            # what the rules dropped, and why
    python -m w4a16_build.generate --estimate --manifest full   # build time, memory, size on this machine

Deriving a manifest and heuristics from benchmark results is `python -m w4a16_build.derive`.

The manifest defaults to $W4A16_MANIFEST, else `default`; include globs
default to $W4A16_KERNELS (comma separated).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from . import archs as archs_mod
from .manifest import ManifestError, load, parse_kernel_filter
from .paths import DEFAULT_MANIFEST, resolve_manifest
from .pipeline import plan as make_plan


def build_parser(prog: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    p.add_argument("--manifest", default=None,
                   help=f"built-in manifest name or path to a YAML file (default: $W4A16_MANIFEST, else "
                        f"{DEFAULT_MANIFEST!r}; an empty value means {DEFAULT_MANIFEST!r}, as the build passes it)")
    p.add_argument("--kernels", default=None,
                   help="comma-separated include globs on kernel names (default: $W4A16_KERNELS)")
    p.add_argument("--kernels-source", default=None, help=argparse.SUPPRESS)  # how errors name --kernels
    p.add_argument("--list", action="store_true", help="print the kernel names and count")
    p.add_argument("--json", action="store_true", help="with --list: print JSON with each kernel's configuration")
    p.add_argument("--rejected", action="store_true", help="with --list: print configurations a validity rule dropped")
    p.add_argument("--out", metavar="DIR", help="write generated sources and sources.txt into DIR")
    p.add_argument("--estimate", action="store_true",
                   help="predict build time, memory per job and binary size on this machine")
    p.add_argument("--quiet", action="store_true", help="with --out: print nothing on success")
    p.add_argument("--from-results", nargs="*", help=argparse.SUPPRESS)  # moved to derive: says so
    p.add_argument("--cuda-archs", metavar="ARCHS",
                   help="the CMAKE_CUDA_ARCHITECTURES the build will use (the build passes $W4A16_CUDA_ARCHS): "
                        "entries 90a and 80, each NN, NN-real or NN-virtual; a family none of them "
                        "builds is left out (default " + archs_mod.DEFAULT + ")")
    return p


def check_cuda_archs(archs: str) -> str | None:
    """Why a CMAKE_CUDA_ARCHITECTURES value cannot build these kernels, or None (generator/archs.py)."""
    return archs_mod.check(archs)


def _why_empty(plan, manifest, kernels_arg: str, kernels_source: str) -> str:
    """One line on why a plan holds no kernel: the filter, or the rules (which rejected what)."""
    if plan.no_arch and not plan.kernels:
        fams = sorted({c.family for c in plan.no_arch})
        return (f"W4A16_CUDA_ARCHS={plan.cuda_archs!r} builds none of the {len(plan.no_arch)} selected kernels of "
                f"manifest {manifest.name!r} (families {', '.join(fams)} need "
                f"{' or '.join(sorted({a for c in plan.no_arch for a in c.archs}))})")
    if plan.filtered_out:
        return (f"{kernels_source}={kernels_arg!r} selects none of the {len(plan.filtered_out)} kernels of "
                f"manifest {manifest.name!r}" if kernels_arg else
                f"manifest {manifest.name!r}: its include/exclude globs leave none of its "
                f"{len(plan.filtered_out)} kernels")
    if plan.rejected:
        by_rule: dict[str, int] = {}
        for r in plan.rejected:
            by_rule[r.rule] = by_rule.get(r.rule, 0) + 1
        rules = ", ".join(f"{rule} rejected {n}" for rule, n in sorted(by_rule.items()))
        return (f"manifest {manifest.name!r} yields no kernel: every configuration breaks a validity rule "
                f"({rules}; `--list --rejected` shows each)")
    return f"manifest {manifest.name!r} yields no kernel"


def main(argv: list[str] | None = None, prog: str = "python -m w4a16_build.generate") -> int:
    try:
        return _main(argv, prog)
    except BrokenPipeError:
        # `generate --list | head`: the reader left; not an error of ours. Point stdout at
        # /dev/null so the interpreter's final flush does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _main(argv, prog) -> int:
    parser = build_parser(prog)
    args, unknown = parser.parse_known_args(argv)
    if args.from_results is not None:
        print("error: deriving a manifest from results moved to its own command: python -m w4a16_build.derive "
              "RESULTS.json... [--write-manifest YAML] [--heuristics PATH --write-heuristics JSON] "
              "(python -m generator.derive in a checkout)", file=sys.stderr)
        return 2
    if unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    if not (args.list or args.json or args.out or args.rejected or args.estimate):
        build_parser(prog).error("nothing to do: give --list, --json, --estimate or --out DIR")
    if args.cuda_archs is not None:
        why = check_cuda_archs(args.cuda_archs)
        if why:
            print(f"error: {why}", file=sys.stderr)
            return 2
    # Errors name the filter the way the user gave it: the option, or the environment variable
    # (the build passes W4A16_KERNELS through --kernels and says so with --kernels-source).
    kernels_source = args.kernels_source or ("--kernels" if args.kernels is not None else "W4A16_KERNELS")
    if args.kernels is None:
        args.kernels = os.environ.get("W4A16_KERNELS", "")
    # The build always passes --manifest (its cached value, maybe empty): a later re-configure
    # never picks up another manifest from the shell's environment.
    if args.manifest is None:
        args.manifest = os.environ.get("W4A16_MANIFEST", "")
    args.manifest = args.manifest or DEFAULT_MANIFEST
    try:
        manifest = load(resolve_manifest(args.manifest))
        plan = make_plan(manifest, parse_kernel_filter(args.kernels, kernels_source), args.cuda_archs)
    except ManifestError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    empty = None if plan.kernels else _why_empty(plan, manifest, args.kernels, kernels_source)
    if empty and (args.out or args.estimate):
        # Nothing is built (or installed) from a selection of no kernel.
        print(f"error: {empty}", file=sys.stderr)
        return 2

    if args.json and not args.estimate:
        from .render import plan_json

        doc = plan_json(plan)
        if args.rejected:
            doc["rejected"] = [{"name": r.config.name, "rule": r.rule, "reason": r.reason}
                               for r in plan.rejected]
        print(json.dumps(doc, indent=1, sort_keys=True))
    elif args.list or args.rejected:
        if args.rejected:
            for r in plan.rejected:
                print(f"{r.config.name}\t{r.rule}: {r.reason}")
            print(f"{len(plan.rejected)} configurations rejected by validity rules")
        if args.list:
            for name in plan.names:
                print(name)
            extra = f", {len(plan.filtered_out)} filtered out" if plan.filtered_out else ""
            print(f"{len(plan.kernels)} kernels (manifest {manifest.name}{extra})")
    if empty:
        print(f"error: {empty}", file=sys.stderr)
        return 1

    if args.estimate:
        from .estimate import estimate, format_estimate

        est = estimate(plan)
        print(json.dumps(est, indent=1, sort_keys=True) if args.json else format_estimate(est))

    if args.out:
        from .render import render

        res = render(plan, args.out)
        if not args.estimate and not args.quiet:
            from .estimate import estimate, one_line

            print(f"w4a16: {one_line(estimate(plan))}")
        if not args.quiet:
            print(f"manifest {manifest.name} (sha256 {manifest.sha256[:12]}): {len(plan.kernels)} kernels "
                  f"in {len(plan.shards)} files; {len(res.written)} written, {len(res.unchanged)} unchanged, "
                  f"{len(res.removed)} removed -> {args.out}", file=sys.stderr if args.list or args.json else sys.stdout)
    return 0
