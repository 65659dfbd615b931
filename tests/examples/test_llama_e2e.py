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
    # Causal over the static cache: a key written at a later position (6, by another sequence)
    # must not reach the query at position 5.
    m.reset_cache(2, 16)
    want = m(ids[:, :6], torch.arange(6))
    other = ids.clone()
    other[:, 6] = (other[:, 6] + 1) % e.CONFIGS["tiny"]["vocab"]
    m(other, torch.arange(7))
    torch.testing.assert_close(m(ids[:, 5:6], torch.tensor([5])), want, rtol=1e-4, atol=1e-5)


def test_the_decoder_is_transformers_llama():
    """Same weights in transformers' LlamaForCausalLM (rotary, grouped-query attention, norms):
    the same logits, in one pass and token by token through the static cache."""
    transformers = pytest.importorskip("transformers", reason="transformers is not installed")
    e = load()
    c = e.CONFIGS["tiny"]
    torch.manual_seed(0)
    m = e.Decoder(c, dtype=torch.float32, device="cpu")
    with torch.no_grad():
        for p in m.parameters():
            if p.dim() == 1:
                p.normal_(1.0, 0.1)           # norms not all ones, so their weights are compared too
    cfg = transformers.LlamaConfig(vocab_size=c["vocab"], hidden_size=c["hidden"], intermediate_size=c["inter"],
                                   num_hidden_layers=c["layers"], num_attention_heads=c["heads"],
                                   num_key_value_heads=c["kv_heads"], rope_theta=c["rope_theta"], rms_norm_eps=1e-5,
                                   max_position_embeddings=64, tie_word_embeddings=False)
    cfg.rope_parameters = {"rope_type": "default", "rope_theta": c["rope_theta"]}
    ref = transformers.LlamaForCausalLM(cfg).float().eval()
    names = {"q": "self_attn.q_proj", "k": "self_attn.k_proj", "v": "self_attn.v_proj", "o": "self_attn.o_proj",
             "gate": "mlp.gate_proj", "up": "mlp.up_proj", "down": "mlp.down_proj"}
    sd = {"model.embed_tokens.weight": m.embed.weight, "model.norm.weight": m.norm.weight,
          "lm_head.weight": m.head.weight}
    for i, b in enumerate(m.blocks):
        sd.update({f"model.layers.{i}.{n}.weight": b.dense[p].weight for p, n in names.items()})
        sd[f"model.layers.{i}.input_layernorm.weight"] = b.norm1.weight
        sd[f"model.layers.{i}.post_attention_layernorm.weight"] = b.norm2.weight
    result = ref.load_state_dict(sd, strict=False)
    assert not result.unexpected_keys and not [k for k in result.missing_keys if "rotary" not in k]
    ids = torch.randint(0, c["vocab"], (2, 20))
    with torch.no_grad():
        want = ref(ids).logits
        m.reset_cache(2, 32)
        torch.testing.assert_close(m(ids, torch.arange(20)), want[:, -1], rtol=1e-4, atol=1e-4)
        m.reset_cache(2, 32)
        m(ids[:, :5], torch.arange(5))
        for t in range(5, 20):
            step = m(ids[:, t:t + 1], torch.tensor([t]))
            torch.testing.assert_close(step, want[:, t], rtol=1e-4, atol=1e-4)


@pytest.mark.gpu
def test_the_script_runs_and_reports_every_batch(tmp_path):
    e = load()
    res = e.main(["--model", "tiny", "--batches", "1,3", "--prompt", "16", "--steps", "8", "--prefill", "64",
                  "--rounds", "1", "--check-steps", "8", "--json", str(tmp_path / "e2e.json")])
    assert sorted(res["decode"]) == [1, 3] and all(v["w4a16"] > 0 and v["dense"] > 0 for v in res["decode"].values())
    assert res["prefill"]["w4a16"] > 0 and res["greedy"]["steps"] == 8
    assert (tmp_path / "e2e.json").is_file()
