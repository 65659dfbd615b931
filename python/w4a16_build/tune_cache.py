"""The persistent tuning cache: which tactic is fastest, per GPU, build and shape.

One JSON file (nothing in it is executed or unpickled):

    {"format": "w4a16_build.tune/1",
     "entries": {"<gpu>|<sms>|<build>|<dtype>|<mode>|<group>|<n>|<k>":
                   {"<M bucket>": {"tactic": "...", "us": 12.3}, ...}}}

Location: $W4A16_TUNE_CACHE, else $XDG_CACHE_HOME/w4a16_build/tune.json (default
~/.cache/...). Writes take an exclusive lock on "<file>.lock", re-read the file,
merge, write a temporary file and rename it over the old one, so concurrent
processes neither lose each other's entries nor leave a torn file. A file that
cannot be parsed, or has another format, is ignored with a warning and
replaced at the next write. Entries of other GPUs or builds are kept but never
matched: the key names the GPU and the build.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
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


def _valid_entry(v) -> bool:
    return (isinstance(v, dict) and all(
        isinstance(b, str) and b.isdigit() and isinstance(r, dict)
        and isinstance(r.get("tactic"), str) and isinstance(r.get("us"), (int, float))
        for b, r in v.items()))


class TuneCache:
    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path is not None else default_path()

    def read(self) -> dict[str, dict]:
        """All valid entries; {} for a missing, corrupt or foreign file (with a warning)."""
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return {}
        except OSError as e:
            warnings.warn(f"w4a16_build: cannot read tuning cache {self.path}: {e}; ignoring it")
            return {}
        try:
            doc = json.loads(text)
        except ValueError:
            warnings.warn(f"w4a16_build: tuning cache {self.path} is not valid JSON; ignoring it "
                          "(it will be rewritten)")
            return {}
        if not isinstance(doc, dict) or doc.get("format") != FORMAT or not isinstance(doc.get("entries"), dict):
            warnings.warn(f"w4a16_build: tuning cache {self.path} has an unknown format; ignoring it "
                          "(it will be rewritten)")
            return {}
        return {k: v for k, v in doc["entries"].items() if isinstance(k, str) and _valid_entry(v)}

    def lookup(self, key: str) -> dict[int, tuple[str, float]]:
        entry = self.read().get(key, {})
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

    def update(self, key: str, results: dict[int, tuple[str, float]]) -> None:
        """Merge results for one key into the file, atomically."""
        with self._locked():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # a bad file was already reported by read()
                entries = self.read()
            entry = dict(entries.get(key, {}))
            for bucket, (tactic, us) in results.items():
                entry[str(int(bucket))] = {"tactic": tactic, "us": round(float(us), 3)}
            entries[key] = entry
            doc = {"format": FORMAT, "entries": entries}
            fd, tmp = tempfile.mkstemp(prefix=".tune.", suffix=".json", dir=str(self.path.parent))
            try:
                with os.fdopen(fd, "w") as f:
                    json.dump(doc, f, indent=1, sort_keys=True)
                os.replace(tmp, self.path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
