"""Compiler launcher that records each compile's wall time, peak memory and object size.

CMake puts it in front of nvcc and the host compiler (CMAKE_<LANG>_COMPILER_LAUNCHER):

    python compile_wrapper.py --log BUILD/compile_log.jsonl --plan BUILD/generated/manifest.json \
        -- [ccache] nvcc ... -o file.o

It runs the command, then appends one JSON line to the log (under a file lock,
as ninja runs several compiles at once). One rewrite, for reproducible builds:
a generated kernel file (one the plan's "files" lists: the generator says
which, no path pattern does) is compiled from a content-addressed copy
(<tmp>/w4a16_build-src/<sha256>/<name>.cu), because nvcc hashes the source
file's location into the names of internal device symbols; two checkouts in
different directories then produce identical objects. The copies live in a
directory only this user can write (see content_root), and an existing copy is
used only if its bytes equal the source. Build tooling only: it is not
installed with the package.
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import stat
import subprocess
import sys
import tempfile
import time

try:
    from .plan_files import kernel_files, other_files
except ImportError:  # run as a script by CMake
    from plan_files import kernel_files, other_files


def _private_dir(path: str) -> bool:
    """Create `path` (mode 0700) if missing; true if it is a real directory that this user owns
    and nobody else can write to. A directory another user made, or a link, is refused."""
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    except OSError:
        return False
    st = os.lstat(path)
    return (stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid()
            and stat.S_IMODE(st.st_mode) & 0o022 == 0)


def content_root() -> str | None:
    """Where content-addressed copies live: <tmp>/w4a16_build-src if this user owns it (the same
    path for every build, which reproducibility needs), else <tmp>/w4a16_build-src-<uid>; None if
    neither can be made private (the compile then uses the original path)."""
    tmp = tempfile.gettempdir()
    for name in ("w4a16_build-src", f"w4a16_build-src-{os.getuid()}"):
        path = os.path.join(tmp, name)
        if _private_dir(path):
            return path
    return None


def generated_kernel_files(plan: dict, plan_path: str) -> set[str]:
    """Absolute paths of the kernel files the generator wrote (manifest.json "files", relative
    to the directory of manifest.json)."""
    base = os.path.dirname(os.path.abspath(plan_path))
    return {os.path.normpath(os.path.join(base, f)) for f in kernel_files(plan)}


def stable_source(cmd: list[str], kernel_files: set[str]) -> list[str]:
    """Point the compile of a generated kernel file at a content-addressed copy of it.

    The copy is trusted only because nobody else can write where it lives (content_root):
    another local user could otherwise plant source under the expected name. An existing
    copy is compared byte for byte and rewritten if it differs."""
    if "-c" not in cmd[:-1]:
        return cmd
    i = cmd.index("-c") + 1
    src = cmd[i]
    if os.path.normpath(os.path.abspath(src)) not in kernel_files:
        return cmd
    root = content_root()
    if root is None:
        return cmd
    data = open(src, "rb").read()
    d = os.path.join(root, hashlib.sha256(data).hexdigest()[:32])
    if not _private_dir(d):
        return cmd
    dst = os.path.join(d, os.path.basename(src))
    try:
        with open(dst, "rb") as f:
            same = f.read() == data
    except OSError:
        same = False
    if not same:
        fd, tmp = tempfile.mkstemp(dir=d)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, dst)  # atomic: concurrent builds write the same bytes
    return cmd[:i] + [dst] + cmd[i + 1:]


def main(argv: list[str]) -> int:
    if "--" not in argv or argv[:1] != ["--log"] or argv[2:3] != ["--plan"]:
        print("usage: compile_wrapper.py --log FILE --plan GENERATED/manifest.json -- COMMAND...", file=sys.stderr)
        return 2
    log, plan_path = argv[1], argv[3]
    try:
        with open(plan_path) as f:
            plan = json.load(f)
    except (OSError, ValueError):
        plan = {}  # no plan: compile every file where it is (reproducibility is then not promised)
    cmd = stable_source(argv[argv.index("--") + 1:], generated_kernel_files(plan, plan_path))
    t0 = time.monotonic()
    rc = subprocess.call(cmd)
    wall = time.monotonic() - t0
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # max over nvcc's subprocesses
    out = cmd[cmd.index("-o") + 1] if "-o" in cmd[:-1] else None
    size = os.path.getsize(out) if out and rc == 0 and os.path.exists(out) else None
    rec = {"object": out, "seconds": round(wall, 2), "peak_mb": round(peak_kb / 1024, 1), "bytes": size, "rc": rc}
    done = None
    try:
        import fcntl

        with open(log, "a+") as f:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX)
            f.write(json.dumps(rec) + "\n")
            f.flush()
            f.seek(0)
            done = sum(1 for _ in f) - _lines_at_configure(log)
    except OSError:
        pass  # a report is not worth failing a build for
    if rc == 0 and done is not None:
        try:  # a progress line is not worth failing a build for either
            try:
                from .progress import say
            except ImportError:  # run as a script by CMake
                from progress import say
            name = os.path.basename(out or "?").removesuffix(".o")
            say(f"w4a16: [{done}/{_files_in_build(plan)}] compiled {name}  {wall:.0f} s, {peak_kb / 2**20:.1f} GB")
        except Exception:
            pass
    return rc


def _lines_at_configure(log: str) -> int:
    """The log's length when this build was configured (CMake writes it beside the log), so that
    the progress count starts at 1 in an incremental build too."""
    try:
        return int(open(log + ".start").read().strip() or 0)
    except (OSError, ValueError):
        return 0


def _files_in_build(plan: dict) -> int:
    """Generated sources (the plan's "files") + the two hand-written ones (bindings, status)."""
    return len(kernel_files(plan)) + len(other_files(plan)) + 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
