"""examples/llama_e2e.py: its decoder is a correct Llama step by step (CPU), and the script runs (GPU)."""

import importlib.util
from pathlib import Path

import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed")

PATH = Path(__file__).resolve().parents[2] / "examples" / "llama_e2e.py"


def load():
    spec = importlib.util.spec_from_file_location("llama_e2e", PATH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_decoding_token_by_token_through_the_static_cache_equals_one_full_pass():
    e = load()
    torch.manual_seed(0)
    m = e.Decoder(e.CONFIGS["tiny"], dtype=torch.float32, device="cpu")
    ids = torch.randint(0, e.CONFIGS["tiny"]["vocab"], (2, 7))
    m.reset_cache(2, 16)
    full = m(ids, torch.arange(7))
    m.reset_cache(2, 16)
    m(ids[:, :3], torch.arange(3))
    for t in range(3, 7):
        step = m(ids[:, t:t + 1], torch.tensor([t]))
    torch.testing.assert_close(step, full, rtol=1e-4, atol=1e-5)
    # A later token changes nothing before it (causal over the static cache).
    m.reset_cache(2, 16)
    other = ids.clone()
    other[:, 6] = (other[:, 6] + 1) % e.CONFIGS["tiny"]["vocab"]
    assert not torch.allclose(m(other, torch.arange(7)), full)
    m.reset_cache(2, 16)
    torch.testing.assert_close(m(other[:, :6], torch.arange(6)), m(ids[:, :6], torch.arange(6)))


@pytest.mark.gpu
def test_the_script_runs_and_reports_every_batch(tmp_path):
    e = load()
    res = e.main(["--model", "tiny", "--batches", "1,3", "--prompt", "16", "--steps", "8", "--prefill", "64",
                  "--rounds", "1", "--check-steps", "8", "--json", str(tmp_path / "e2e.json")])
    assert sorted(res["decode"]) == [1, 3] and all(v["w4a16"] > 0 and v["dense"] > 0 for v in res["decode"].values())
    assert res["prefill"]["w4a16"] > 0 and res["greedy"]["steps"] == 8
    assert (tmp_path / "e2e.json").is_file()
