"""The host-side checks of this folder: a .cu file next to the test, built with nvcc against the
launcher headers and run on the host (no GPU); it prints one "CASE value" line per case."""

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def host_check(tmp_path_factory):
    """host_check("name_check.cu") -> {case: value as printed}; skips without nvcc."""

    def run(source: str) -> dict[str, str]:
        if shutil.which("nvcc") is None:
            pytest.skip("nvcc is not on PATH")
        exe = tmp_path_factory.mktemp(Path(source).stem) / Path(source).stem
        r = subprocess.run(["nvcc", "-std=c++17", "-arch=sm_90a", "-I", str(ROOT), "-I", str(ROOT / "csrc"),
                            str(Path(__file__).with_name(source)), str(ROOT / "csrc" / "status.cpp"),
                            "-o", str(exe)], capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stderr[-4000:]
        out = subprocess.run([str(exe)], check=True, capture_output=True, text=True, timeout=60).stdout
        return {line.split()[0]: line.split()[1] for line in out.splitlines()}

    return run
