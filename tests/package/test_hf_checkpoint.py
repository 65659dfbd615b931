"""Loading a quantized checkpoint directory into a transformers model (issue 17, item 3).

The checkpoint is a tiny Llama quantized and packed by the real compressed-tensors library and
saved by transformers' own save_pretrained; the reference is the library's decompression of the
same model. CPU tests check what is served, what stays dense and the weights; the GPU test checks
greedy generation against the dense dequantized model."""

import json

import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed")
transformers = pytest.importorskip("transformers", reason="transformers is not installed (pip install .[test])")
pytest.importorskip("compressed_tensors", reason="compressed-tensors is not installed (pip install .[test])")
pytest.importorskip("safetensors", reason="safetensors is not installed (pip install .[test])")

from compressed_tensors.compressors import ModelCompressor  # noqa: E402
from compressed_tensors.quantization import (QuantizationArgs, QuantizationConfig,  # noqa: E402
                                             QuantizationScheme, apply_quantization_config)
from compressed_tensors.quantization.utils import calculate_qparams  # noqa: E402

from w4a16_build.hf_checkpoint import load_into  # noqa: E402
from w4a16_build.nn import W4A16Linear  # noqa: E402
from w4a16_build.packing import dequantize_packed  # noqa: E402

PROJ = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
        "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj")


def tiny_config(tied=False):
    return transformers.LlamaConfig(vocab_size=256, hidden_size=128, intermediate_size=256, num_hidden_layers=2,
                                    num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=128,
                                    tie_word_embeddings=tied)


def write_checkpoint(path, *, symmetric=True, group=64, seed=0, tied=False):
    """A tiny Llama quantized (lm_head left out) and saved as compressed-tensors pack-quantized.
    Returns {linear name: the library's decompressed weight} and the dense tensors it saved."""
    torch.manual_seed(seed)
    model = transformers.LlamaForCausalLM(tiny_config(tied)).to(torch.float16)
    args = QuantizationArgs(num_bits=4, type="int", symmetric=symmetric, strategy="group", group_size=group)
    qc = QuantizationConfig(config_groups={"group_0": QuantizationScheme(targets=["Linear"], weights=args)},
                            ignore=["lm_head"])
    apply_quantization_config(model, qc)
    for mod in model.modules():
        if hasattr(mod, "weight_scale"):
            w = mod.weight.detach().float()
            wg = w.reshape(w.shape[0], -1, group)
            s, z = calculate_qparams(wg.amin(-1), wg.amax(-1), args)
            mod.weight_scale.data.copy_(s.reshape(mod.weight_scale.shape).to(mod.weight_scale.dtype))
            if not symmetric:
                mod.weight_zero_point.data.copy_(z.reshape(mod.weight_zero_point.shape).to(mod.weight_zero_point.dtype))
    comp = ModelCompressor.from_pretrained_model(model, "pack-quantized")
    comp.compress_model(model)
    model.save_pretrained(str(path))
    comp.update_config(str(path))
    comp.decompress_model(model)
    ref = {f"model.layers.{i}.{p}": model.get_submodule(f"model.layers.{i}.{p}").weight.detach().clone()
           for i in range(2) for p in PROJ}
    dense = {"model.embed_tokens.weight": model.model.embed_tokens.weight.detach().clone(),
             "lm_head.weight": model.lm_head.weight.detach().clone()}
    return ref, dense


def fresh_model(tied=False):
    return transformers.LlamaForCausalLM(tiny_config(tied)).to(torch.float16)


@pytest.mark.parametrize("symmetric", [True, False])
def test_every_quantized_linear_is_served_and_the_rest_loaded(tmp_path, symmetric):
    ref, dense = write_checkpoint(tmp_path, symmetric=symmetric)
    model = fresh_model()
    report = load_into(model, tmp_path)
    assert report.method == "pack-quantized"
    assert sorted(report.served) == sorted(ref) and report.dense == {}
    assert report.missing == [] and report.unexpected == []
    for name, w in ref.items():
        mod = model.get_submodule(name)
        assert isinstance(mod, W4A16Linear)
        assert mod.mode == ("groupwise" if symmetric else "groupwise_zero")
        torch.testing.assert_close(dequantize_packed(mod.packed).float(), w.float(), rtol=2e-3, atol=1e-3)
    assert torch.equal(model.model.embed_tokens.weight, dense["model.embed_tokens.weight"])
    assert torch.equal(model.lm_head.weight, dense["lm_head.weight"])


def test_from_pretrained_builds_the_model_from_the_checkpoint_config(tmp_path):
    import w4a16_build

    ref, dense = write_checkpoint(tmp_path, symmetric=False)
    model, report = w4a16_build.from_pretrained(tmp_path, device="cpu")
    assert type(model).__name__ == "LlamaForCausalLM" and sorted(report.served) == sorted(ref)
    assert report.missing == [] and report.unexpected == []
    assert torch.equal(model.lm_head.weight, dense["lm_head.weight"])


def test_tied_embeddings_are_not_reported_missing(tmp_path):
    ref, dense = write_checkpoint(tmp_path, tied=True)
    model = fresh_model(tied=True)
    report = load_into(model, tmp_path)
    assert sorted(report.served) == sorted(ref) and report.missing == [], report.missing
    assert torch.equal(model.lm_head.weight, dense["model.embed_tokens.weight"])


def test_layers_the_kernels_cannot_take_stay_dense_and_are_listed(tmp_path):
    """Group 32 is not a multiple of 64: every layer is dequantized into its nn.Linear, with why."""
    ref, _ = write_checkpoint(tmp_path, group=32)
    model = fresh_model()
    report = load_into(model, tmp_path)
    assert report.served == [] and sorted(report.dense) == sorted(ref)
    assert all("group" in why for why in report.dense.values()), report.dense
    for name, w in ref.items():
        mod = model.get_submodule(name)
        assert type(mod) is torch.nn.Linear
        torch.testing.assert_close(mod.weight.float(), w.float(), rtol=2e-3, atol=1e-3)


def test_other_quantization_methods_are_refused(tmp_path):
    write_checkpoint(tmp_path)
    cfg = json.loads((tmp_path / "config.json").read_text())
    cfg["quantization_config"] = {"quant_method": "bitsandbytes", "load_in_4bit": True}
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="quant_method 'bitsandbytes'"):
        load_into(fresh_model(), tmp_path)
    del cfg["quantization_config"]
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="no quantization_config"):
        load_into(fresh_model(), tmp_path)


@pytest.mark.gpu
def test_greedy_generation_matches_the_dense_dequantized_model(tmp_path):
    """The served model generates the same greedy tokens as the same model with the library's
    dequantized weights in plain fp16 nn.Linear layers (static cache), for 32 steps or up to a
    step where the dense model's two best logits are closer than the kernels' rounding (a random
    tiny model has near-ties; there the sequences may part, and the rest is not compared)."""
    ref, _ = write_checkpoint(tmp_path, symmetric=False)
    ours = fresh_model()
    load_into(ours, tmp_path)
    dense = fresh_model()
    report = load_into(dense, tmp_path)
    for name in report.served:                       # the same weights, dense
        parent, _, child = name.rpartition(".")
        lin = torch.nn.Linear(ref[name].shape[1], ref[name].shape[0], bias=False).to(torch.float16)
        lin.weight.data.copy_(ref[name])
        setattr(dense.get_submodule(parent), child, lin)
    ours, dense = ours.cuda().eval(), dense.cuda().eval()
    prompt = torch.randint(0, 256, (1, 8), device="cuda", generator=torch.Generator("cuda").manual_seed(0))
    with torch.no_grad():
        la, lb = ours(prompt).logits.float(), dense(prompt).logits.float()
        torch.testing.assert_close(la, lb, rtol=2e-2, atol=2e-2 * lb.abs().max().item())
        kw = dict(max_new_tokens=32, do_sample=False, cache_implementation="static", pad_token_id=0,
                  output_scores=True, return_dict_in_generate=True)
        a = ours.generate(prompt, **kw)
        b = dense.generate(prompt, **kw)
    for step, scores in enumerate(b.scores):
        ta, tb = a.sequences[0, 8 + step], b.sequences[0, 8 + step]
        if ta != tb:
            top = scores[0].float().topk(2).values
            assert (top[0] - top[1]).item() < 2e-2 * top[0].abs().item() + 1e-2, (step, ta, tb, top)
            break
