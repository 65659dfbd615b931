"""The persistent tuning cache: which tactic is fastest, per GPU, build and shape.

One JSON file (nothing in it is executed or unpickled):

    {"format": "w4a16_build.tune/1",
     "entries": {"<gpu>|<sms>|<build>|<dtype>|<mode>|<group>|<n>|<k>":
                   {"<M bucket>": {"tactic": "...", "us": 12.3}, ...}}}

An empty tactic ("") records that tune() timed the bucket and kept the heuristic's choice: the
heuristic then decides per M there (selection.ranked_tactics). Entries written before that rule
(2026-11-28) store the heuristic's choice at the bucket's M as a tactic and keep pinning it for the
whole bucket until the shape is tuned again: the key names the build, not the package version.

Location: $W4A16_TUNE_CACHE, else $XDG_CACHE_HOME/w4a16_build/tune.json (default
~/.cache/...). Writes take an exclusive lock on "<file>.lock", re-read the file,
merge, write a temporary file and rename it over the old one, so concurrent
processes neither lose each other's entries nor leave a torn file. A file that
cannot be parsed, or has another format, is ignored with a warning and
replaced at the next write; one that cannot be read right now, or that another
version of the format wrote, is never overwritten. Bucket keys must be ASCII
numbers and rows well-formed; anything else is dropped on reading. A writer
killed mid-write leaves a temporary file that the next writer removes. Entries
of other GPUs or builds are kept but never matched: the key names the GPU and
the build. A cached tactic is checked against the build before it runs
(selection.py, kernels.fits): a bad cache costs speed, never correctness.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import re
import secrets
import warnings
from pathlib import Path

FORMAT = "w4a16_build.tune/1"
log = logging.getLogger("w4a16_build")


def default_path() -> Path:
    env = os.environ.get("W4A16_TUNE_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "w4a16_build" / "tune.json"


def make_key(gpu: str, sms: int, build: str, dtype: str, mode: str, group: int, n: int, k: int) -> str:
    return "|".join(str(v) for v in (gpu, sms, build, dtype, mode, group, n, k))


_BUCKET = re.compile(r"[1-9][0-9]{0,8}")  # ASCII digits only: "²".isdigit() is True, int("²") raises


def _valid_row(r) -> bool:
    return (isinstance(r, dict) and isinstance(r.get("tactic"), str)
            and isinstance(r.get("us"), (int, float)) and not isinstance(r.get("us"), bool)
            and math.isfinite(r["us"]) and r["us"] >= 0)


def _clean_entry(v) -> dict:
    """The valid buckets of one entry ({} if it is not a mapping): a bad bucket costs
    only that bucket, never the shape or the whole file."""
    if not isinstance(v, dict):
        return {}
    return {b: r for b, r in v.items() if isinstance(b, str) and _BUCKET.fullmatch(b) and _valid_row(r)}


# Results that could not be written (the file was unreadable or another version's): kept for
# this process, per file and key, so that they are used and not measured again.
_unsaved: dict[tuple[str, str], dict] = {}


class TuneCache:
    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path is not None else default_path()

    def _load(self) -> tuple[dict[str, dict], str, str]:
        """(entries, state, detail); state: ok | missing | unreadable | corrupt | newer."""
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return {}, "missing", ""
        except (OSError, UnicodeDecodeError) as e:
            return {}, "unreadable", str(e)
        try:
            doc = json.loads(text)
        except ValueError:
            return {}, "corrupt", "not valid JSON"
        if not isinstance(doc, dict) or not isinstance(doc.get("entries"), dict):
            return {}, "corrupt", "unknown format"
        fmt = doc.get("format")
        if fmt != FORMAT:
            if isinstance(fmt, str) and fmt.startswith(FORMAT.rsplit("/", 1)[0] + "/"):
                return {}, "newer", f"format {fmt!r} of another w4a16_build version"
            return {}, "corrupt", "unknown format"
        entries = {}
        for k, v in doc["entries"].items():
            e = _clean_entry(v)
            if isinstance(k, str) and e:
                entries[k] = e
        return entries, "ok", ""

    def read(self) -> dict[str, dict]:
        """All valid entries; {} for a missing, unreadable, corrupt or foreign file (with a warning)."""
        entries, state, detail = self._load()
        if state == "unreadable":
            warnings.warn(f"w4a16_build: cannot read tuning cache {self.path}: {detail}; ignoring it")
        elif state == "corrupt":
            warnings.warn(f"w4a16_build: tuning cache {self.path} has an unknown format or is not valid "
                          f"JSON ({detail}); ignoring it (it will be rewritten)")
        elif state == "newer":
            warnings.warn(f"w4a16_build: tuning cache {self.path} has the {detail}; ignoring it")
        return entries

    def lookup(self, key: str) -> dict[int, tuple[str, float]]:
        entry = {**self.read().get(key, {}), **_unsaved.get((str(self.path), key), {})}
        return {int(b): (r["tactic"], float(r["us"])) for b, r in entry.items()}

    @contextlib.contextmanager
    def _locked(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock = open(str(self.path) + ".lock", "a+")
        try:
            try:
                import fcntl

                fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            except ImportError:  # pragma: no cover - non-POSIX: best effort
                pass
            yield
        finally:
            lock.close()  # releases the lock

    def _tmp_prefix(self) -> str:
        return f".{self.path.name}.tmp."

    def update(self, key: str, results: dict[int, tuple[str, float]]) -> None:
        """Merge results for one key into the file, atomically.

        A file that exists but cannot be read now (I/O or permission error), or that another
        version of the format wrote, is left as it is and this update is dropped (a warning
        says so): rewriting it would lose every entry it holds."""
        with self._locked():
            entries, state, detail = self._load()
            if state in ("unreadable", "newer"):
                warnings.warn(f"w4a16_build: not updating tuning cache {self.path} ({detail}); "
                              "the new timings are kept for this process only")
                held = _unsaved.setdefault((str(self.path), key), {})
                for bucket, (tactic, us) in results.items():
                    held[str(int(bucket))] = {"tactic": tactic, "us": round(float(us), 3)}
                return
            if state == "corrupt":
                warnings.warn(f"w4a16_build: tuning cache {self.path} is corrupt ({detail}); rewriting it")
            # Under the lock no other writer is between its temporary file and the rename: any
            # temporary file left here belongs to a writer that was killed.
            for stale in self.path.parent.glob(self._tmp_prefix() + "*"):
                with contextlib.suppress(OSError):
                    stale.unlink()
            entry = dict(entries.get(key, {}))
            for bucket, (tactic, us) in results.items():
                entry[str(int(bucket))] = {"tactic": tactic, "us": round(float(us), 3)}
            entries[key] = entry
            doc = {"format": FORMAT, "entries": entries}
            tmp = self.path.parent / f"{self._tmp_prefix()}{os.getpid()}.{secrets.token_hex(4)}"
            # os.open with 0o666 applies the umask, as creating any file does (mkstemp's 0600 would
            # hide the cache from other users who share it).
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            try:
                with os.fdopen(fd, "w") as f:
                    json.dump(doc, f, indent=1, sort_keys=True)
                os.replace(tmp, self.path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
