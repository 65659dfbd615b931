"""benchmarks/selection_picks.py: the selection's choices computed offline for a build's kernels."""

import importlib.util
import json
import sys

import pytest

pytest.importorskip("torch", reason="PyTorch is not installed")


def _load(repo_root):
    sys.path.insert(0, str(repo_root / "benchmarks"))
    try:
        spec = importlib.util.spec_from_file_location("selection_picks", repo_root / "benchmarks" / "selection_picks.py")
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
    finally:
        sys.path.remove(str(repo_root / "benchmarks"))
    return mod


def test_layers_as_a_list_of_shapes_or_corpus_names(repo_root):
    mod = _load(repo_root)
    assert mod.layers("shapes:10944x2048;4096x4096") == [(10944, 2048, []), (4096, 4096, [])]
    assert any(k == 2048 and n == 16384 for k, n, _ in mod.layers("smollm2-1.7b"))


def test_only_fp16_groupwise_kernels_are_ranked(repo_root, tmp_path):
    """Review (fifteenth session): the filter was the name prefix "fp16_int4_groupwise_", which the
    zero-point kernels share; here the least-padding rule at M = 12 would rank the zero-point
    16-token tile first."""
    mod = _load(repo_root)
    build = tmp_path / "build.json"
    build.write_text(json.dumps({"card": "H200", "build": {"kernel_names": [
        "fp16_int4_groupwise_zero_t64x16x128_c1x1_pingpong_persistent",
        "fp16_int4_groupwise_t256x32x128_c1x1_coop_streamk"]}}))
    out = tmp_path / "picks.json"
    mod.main(["shapes:4096x6144", "12", str(build), str(out)])
    assert json.loads(out.read_text()) == {"4096x6144x12": "fp16_int4_groupwise_t256x32x128_c1x1_coop_streamk"}
