"""benchmarks/same_round_picks.py: old picks against the installed package's, in the same rounds."""

import importlib.util
import json
import sys

import pytest

pytest.importorskip("torch", reason="PyTorch is not installed")


def _load(repo_root, name):
    sys.path.insert(0, str(repo_root / "benchmarks"))
    try:
        spec = importlib.util.spec_from_file_location(name, repo_root / "benchmarks" / f"{name}.py")
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
    finally:
        sys.path.remove(str(repo_root / "benchmarks"))
    return mod


def test_a_layer_whose_k_group_128_does_not_divide_is_skipped(repo_root, tmp_path, monkeypatch):
    """Fifteenth session: the held-out run stopped with a ValueError at deepseek-v2-lite's
    K = 10944 (not a multiple of 128, the group its picks are for) and lost the layers after it."""
    mod = _load(repo_root, "same_round_picks")
    made = []

    class Fake:
        copies = 1

        def __init__(self, k, n, *a):
            if k % 128:
                raise ValueError(f"group_size 128 does not divide K = {k}")
            made.append((k, n))

        def fns(self, m):
            return {"linear": None, "matmul": None}

        def fn(self, m, tactic):
            return None

        def picked(self, m):
            return "new"

    monkeypatch.setattr(mod, "CublasBench", Fake)
    monkeypatch.setattr(mod, "OursBench", Fake)
    monkeypatch.setattr(mod, "SETTLE_S", 0.0)
    monkeypatch.setattr(mod.torch.cuda, "empty_cache", lambda: None)
    monkeypatch.setattr(mod.torch.cuda, "get_device_name", lambda: "fake")
    monkeypatch.setattr(mod, "time_interleaved", lambda fns: [1e-5, 2e-5, 3e-5, 1.5e-5])
    picks = tmp_path / "old.json"
    picks.write_text(json.dumps({"10944x2048x9": "old", "4096x4096x9": "old"}))
    out = tmp_path / "out.json"
    mod.main(["shapes:10944x2048;4096x4096", "9", str(out), str(picks)])
    rows = json.loads(out.read_text())["rows"]
    assert made == [(4096, 4096), (4096, 4096)]
    assert [(r["k"], r["n"], r["old"], r["new"]) for r in rows] == [(4096, 4096, "old", "new")]
    assert rows[0]["old_us"] == pytest.approx(30.0) and rows[0]["cublas_us"] == pytest.approx(10.0)
    assert [(s["k"], s["n"]) for s in json.loads(out.read_text())["skipped"]] == [(10944, 2048)]
