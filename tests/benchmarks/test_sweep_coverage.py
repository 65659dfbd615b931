"""benchmarks/sweep_coverage.py: what the committed corpus sweeps cover."""

import os
import subprocess
import sys


def test_without_files_it_reads_the_committed_results(repo_root, tmp_path):
    """Run without arguments it printed "0 of 28 models" (no files read): a new user's first try
    said nothing was swept. It now reads benchmarks/results, from any working directory."""
    env_path = f"{repo_root / 'python'}:{repo_root}"
    r = subprocess.run([sys.executable, str(repo_root / "benchmarks" / "sweep_coverage.py")], cwd=tmp_path,
                       capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": env_path})
    assert r.returncode == 0, r.stderr
    last = r.stdout.strip().splitlines()[-1]
    swept = int(last.split(" of ")[0])
    assert swept >= 15 and "models have every layer shape timed" in last
    assert "sweep_default149_h200_fp16_llama-2-13b.json" in r.stdout
