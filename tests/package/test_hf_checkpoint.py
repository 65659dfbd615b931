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


AWQ_ORDER = (0, 2, 4, 6, 1, 3, 5, 7)


def _int32(v):
    return torch.where(v >= 1 << 31, v - (1 << 32), v).to(torch.int32)


def _pack_along_last(mat, order=tuple(range(8))):
    """int [R, C] in 0..15 -> int32 [R, C/8]: bits 4i.. of word c hold column 8c + order[i]."""
    v = sum(mat[:, o::8].long() << (4 * i) for i, o in enumerate(order))
    return _int32(v)


def write_gptq_or_awq(path, fmt, *, minus_one=True, label="gptq", group=64, seed=0, bias=False, half_step=False):
    """A tiny Llama whose projections are min/max-quantized (asymmetric, group 64) and saved in the
    GPTQ or AutoAWQ GEMM layout (packed here from the published formats, independently of the
    importer), with a config.json quantization_config as transformers writes it. Returns
    {layer: dequantized weight} and the model's dense tensors."""
    from safetensors.torch import save_file

    torch.manual_seed(seed)
    model = transformers.LlamaForCausalLM(transformers.LlamaConfig(
        vocab_size=256, hidden_size=128, intermediate_size=256, num_hidden_layers=2, num_attention_heads=2,
        num_key_value_heads=1, max_position_embeddings=128, attention_bias=bias)).to(torch.float16)
    model.save_pretrained(str(path))
    tensors = {k: v.contiguous() for k, v in model.state_dict().items()}
    ref = {}
    for i in range(2):
        for p in PROJ:
            name = f"model.layers.{i}.{p}"
            w = tensors.pop(f"{name}.weight").float()
            n, k = w.shape
            wg = w.reshape(n, k // group, group)
            lo, hi = wg.amin(-1).clamp(max=0), wg.amax(-1).clamp(min=0)
            s = (hi - lo) / 15
            z = (-lo / s).round().clamp(1, 15)
            q = (wg / s.unsqueeze(-1) + z.unsqueeze(-1)).round().clamp(0, 15).reshape(n, k).long()
            if half_step:       # codes whose group means sit half a step above the zero: the data cannot tell
                z = z.clamp(max=14)
                q = z.repeat_interleave(group, 1).long() + torch.arange(k) % 2
            ref[name] = (q.float() - z.repeat_interleave(group, 1)) * s.half().float().repeat_interleave(group, 1)
            if fmt == "gptq":
                # qweight [K/8, N]: bits 4j.. of row r hold k = 8r + j
                tensors[f"{name}.qweight"] = _pack_along_last(q).t().contiguous()
                tensors[f"{name}.qzeros"] = _pack_along_last((z.long() - int(minus_one)).t().contiguous())
                tensors[f"{name}.g_idx"] = (torch.arange(k) // group).to(torch.int32)
            else:
                tensors[f"{name}.qweight"] = _pack_along_last(q.t().contiguous(), AWQ_ORDER)
                tensors[f"{name}.qzeros"] = _pack_along_last(z.long().t().contiguous(), AWQ_ORDER)
            tensors[f"{name}.scales"] = s.half().t().contiguous()
    save_file(tensors, str(path / "model.safetensors"))
    cfg = json.loads((path / "config.json").read_text())
    qc = {"quant_method": fmt, "bits": 4, "group_size": group}
    qc.update({"desc_act": False, "sym": False, "checkpoint_format": label} if fmt == "gptq" else
              {"version": "gemm", "zero_point": True})
    if label is None:
        qc.pop("checkpoint_format", None)
    cfg["quantization_config"] = qc
    (path / "config.json").write_text(json.dumps(cfg))
    return ref, tensors


@pytest.mark.parametrize("fmt, minus_one", [("gptq", True), ("gptq", False), ("awq", None)])
def test_gptq_and_awq_directories_load(tmp_path, fmt, minus_one):
    ref, tensors = write_gptq_or_awq(tmp_path, fmt, minus_one=bool(minus_one), label=None)
    model = fresh_model()
    report = load_into(model, tmp_path)
    assert report.method == fmt and sorted(report.served) == sorted(ref)
    assert report.missing == [] and report.unexpected == [] and report.dense == {}
    if fmt == "gptq":
        assert report.gptq_zeros_minus_one is minus_one and report.gptq_rule.startswith("data"), report
    for name, w in ref.items():
        torch.testing.assert_close(dequantize_packed(model.get_submodule(name).packed).float(), w,
                                   rtol=2e-3, atol=1e-3)
    assert torch.equal(model.lm_head.weight, tensors["lm_head.weight"])


def test_gptq_data_overrules_a_wrong_label_and_the_override_overrules_both(tmp_path):
    ref, _ = write_gptq_or_awq(tmp_path, "gptq", minus_one=False, label="gptq")     # v2 data labelled v1
    report = load_into(fresh_model(), tmp_path)
    assert report.gptq_zeros_minus_one is False and "overruling" in report.gptq_rule, report.gptq_rule
    report = load_into(fresh_model(), tmp_path, gptq_zeros_minus_one=True)
    assert report.gptq_zeros_minus_one is True and report.gptq_rule == "override"


def test_a_bias_the_checkpoint_lacks_is_missing_and_one_the_model_lacks_unexpected(tmp_path):
    """A served layer takes its bias from the checkpoint only: a model bias with nothing to load
    must be reported, not silently dropped with the nn.Linear it belonged to."""
    ref, _ = write_checkpoint(tmp_path)                          # no biases in the checkpoint
    model = transformers.LlamaForCausalLM(transformers.LlamaConfig(
        vocab_size=256, hidden_size=128, intermediate_size=256, num_hidden_layers=2, num_attention_heads=2,
        num_key_value_heads=1, max_position_embeddings=128, attention_bias=True)).to(torch.float16)
    report = load_into(model, tmp_path)
    want = sorted(f"model.layers.{i}.self_attn.{p}.bias" for i in range(2) for p in ("q_proj", "k_proj", "v_proj",
                                                                                     "o_proj"))
    assert report.missing == want, report.missing

    ref, _ = write_gptq_or_awq(tmp_path / "b", "awq", bias=True)    # biases the model has no place for
    model = fresh_model()
    report = load_into(model, tmp_path / "b")
    assert report.unexpected == want, report.unexpected
    assert all(model.get_submodule(n[: -len(".bias")]).bias is None for n in want)


def test_the_label_decides_where_the_data_cannot_and_neither_is_an_error(tmp_path):
    ref, _ = write_gptq_or_awq(tmp_path, "gptq", minus_one=False, label="gptq_v2", half_step=True)
    model = fresh_model()
    report = load_into(model, tmp_path)
    assert report.gptq_zeros_minus_one is False and report.gptq_rule.startswith("label"), report.gptq_rule
    name = sorted(ref)[0]
    torch.testing.assert_close(dequantize_packed(model.get_submodule(name).packed).float(), ref[name],
                               rtol=2e-3, atol=1e-3)
    write_gptq_or_awq(tmp_path / "b", "gptq", minus_one=False, label=None, half_step=True)
    with pytest.raises(ValueError, match="neither the data nor the config"):
        load_into(fresh_model(), tmp_path / "b")


def _edit(path, fn):
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(path / "model.safetensors"))
    fn(tensors)
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(path / "model.safetensors"))


def test_a_bad_tensor_is_an_error_naming_the_layer_never_a_dense_stand_in(tmp_path):
    """A layer the kernels could take but whose tensors are wrong must not fall back to the dense
    path (which broadcast a [1] bias and read a g_idx of -1 as the last group)."""
    write_gptq_or_awq(tmp_path, "awq", bias=True)
    model = transformers.LlamaForCausalLM(transformers.LlamaConfig(
        vocab_size=256, hidden_size=128, intermediate_size=256, num_hidden_layers=2, num_attention_heads=2,
        num_key_value_heads=1, max_position_embeddings=128, attention_bias=True)).to(torch.float16)
    _edit(tmp_path, lambda t: t.update({"model.layers.0.self_attn.q_proj.bias": torch.ones(1, dtype=torch.float16)}))
    with pytest.raises(ValueError, match=r"model.layers.0.self_attn.q_proj: checkpoint bias \(1,\)"):
        load_into(model, tmp_path)

    write_checkpoint(tmp_path / "g32", group=32)          # dense path: group 32
    g = (torch.arange(256) // 32).to(torch.int32)
    g[:64] = -1
    _edit(tmp_path / "g32", lambda t: t.update({"model.layers.1.mlp.down_proj.weight_g_idx": g}))
    with pytest.raises(ValueError, match=r"model.layers.1.mlp.down_proj \(pack-quantized\): weight_g_idx must hold"):
        load_into(fresh_model(), tmp_path / "g32")


def test_a_layer_missing_a_tensor_is_named(tmp_path):
    write_gptq_or_awq(tmp_path, "gptq")
    _edit(tmp_path, lambda t: t.pop("model.layers.0.mlp.up_proj.qzeros"))
    with pytest.raises(ValueError, match=r"model.layers.0.mlp.up_proj \(gptq\): has qweight but no qzeros"):
        load_into(fresh_model(), tmp_path)


def test_a_dense_weight_beside_a_quantized_layer_is_unexpected_not_loaded(tmp_path):
    ref, _ = write_checkpoint(tmp_path, group=32)
    name = "model.layers.0.mlp.gate_proj"
    _edit(tmp_path, lambda t: t.update({f"{name}.weight": torch.zeros(256, 128, dtype=torch.float16)}))
    model = fresh_model()
    report = load_into(model, tmp_path)
    assert f"{name}.weight" in report.unexpected
    torch.testing.assert_close(model.get_submodule(name).weight.float(), ref[name].float(), rtol=2e-3, atol=1e-3)


def test_a_gptq_layer_with_a_last_partial_group_loads_dense(tmp_path):
    """K = 320 with group 128: GPTQ stores 3 groups (the last one partial) and a g_idx; the kernels
    take whole groups only, so the layer is dequantized into its nn.Linear, not refused."""
    from safetensors.torch import save_file

    gen = torch.Generator().manual_seed(5)
    n, k = 64, 320
    g_idx = (torch.arange(k) // 128).to(torch.int32)
    q = torch.randint(0, 16, (n, k), generator=gen)
    z = torch.randint(1, 16, (n, 3), generator=gen)
    sc = (torch.rand(n, 3, generator=gen) * 0.01 + 0.001).half()
    save_file({"lin.qweight": _pack_along_last(q).t().contiguous(),
               "lin.qzeros": _pack_along_last((z - 1).t().contiguous()),
               "lin.scales": sc.t().contiguous(), "lin.g_idx": g_idx}, str(tmp_path / "model.safetensors"))
    (tmp_path / "config.json").write_text(json.dumps({"quantization_config": {
        "quant_method": "gptq", "bits": 4, "group_size": 128, "checkpoint_format": "gptq"}}))
    model = torch.nn.Module()
    model.lin = torch.nn.Linear(k, n, bias=False).half()
    report = load_into(model, tmp_path, gptq_zeros_minus_one=True)
    assert list(report.dense) == ["lin"] and "partial group" in report.dense["lin"]
    gid = g_idx.long()
    want = (q.float() - z.float()[:, gid]) * sc.float()[:, gid]
    torch.testing.assert_close(model.lin.weight.float(), want, rtol=2e-3, atol=1e-4)


def test_served_layers_take_each_replaced_layers_dtype(tmp_path):
    write_checkpoint(tmp_path)
    model = fresh_model().to(torch.bfloat16)
    report = load_into(model, tmp_path)
    assert {model.get_submodule(n).dtype for n in report.served} == {torch.bfloat16}
    model = fresh_model()
    report = load_into(model, tmp_path, dtype=torch.bfloat16)                  # the argument wins too
    assert report.served and {model.get_submodule(n).dtype for n in report.served} == {torch.bfloat16}


def test_a_model_on_the_meta_device_is_refused(tmp_path):
    write_checkpoint(tmp_path)
    with torch.device("meta"):
        model = transformers.LlamaForCausalLM(tiny_config())
    with pytest.raises(ValueError, match="meta device"):
        load_into(model, tmp_path)


def dense_twin(tmp_path, ref, report):
    """The same tiny model with the library's dequantized weights in plain fp16 nn.Linear layers."""
    dense = fresh_model()
    load_into(dense, tmp_path)
    for name in report.served:
        parent, _, child = name.rpartition(".")
        lin = torch.nn.Linear(ref[name].shape[1], ref[name].shape[0], bias=False).to(torch.float16)
        lin.weight.data.copy_(ref[name])
        setattr(dense.get_submodule(parent), child, lin)
    return dense


def assert_same_greedy_tokens(a, b, prompt_len):
    """Equal tokens, or up to a step where b's two best logits are closer than the kernels'
    rounding (a random tiny model has near-ties; there the sequences may part)."""
    for step, scores in enumerate(b.scores):
        ta, tb = a.sequences[0, prompt_len + step], b.sequences[0, prompt_len + step]
        if ta != tb:
            top = scores[0].float().topk(2).values
            assert (top[0] - top[1]).item() < 2e-2 * top[0].abs().item() + 1e-2, (step, ta, tb, top)
            return step
    return len(b.scores)


GREEDY = dict(max_new_tokens=32, do_sample=False, cache_implementation="static", pad_token_id=0,
              output_scores=True, return_dict_in_generate=True)


@pytest.mark.gpu
def test_greedy_generation_matches_the_dense_dequantized_model(tmp_path):
    """Static KV cache, eager: the served model generates the dense dequantized model's tokens."""
    ref, _ = write_checkpoint(tmp_path, symmetric=False)
    ours = fresh_model()
    report = load_into(ours, tmp_path)
    dense = dense_twin(tmp_path, ref, report)
    ours, dense = ours.cuda().eval(), dense.cuda().eval()
    prompt = torch.randint(0, 256, (1, 8), device="cuda", generator=torch.Generator("cuda").manual_seed(0))
    with torch.no_grad():
        la, lb = ours(prompt).logits.float(), dense(prompt).logits.float()
        torch.testing.assert_close(la, lb, rtol=2e-2, atol=2e-2 * lb.abs().max().item())
        a = ours.generate(prompt, disable_compile=True, **GREEDY)
        b = dense.generate(prompt, disable_compile=True, **GREEDY)
    assert_same_greedy_tokens(a, b, 8)


@pytest.mark.gpu
def test_generation_compiled_with_cuda_graphs_matches_eager(tmp_path):
    """generate() with a static cache under torch.compile(fullgraph=True, mode="reduce-overhead")
    (CUDA graphs): the custom op traces and is captured, and the tokens are the eager ones."""
    from transformers import CompileConfig

    write_checkpoint(tmp_path, symmetric=True)
    ours = fresh_model()
    load_into(ours, tmp_path)
    ours = ours.cuda().eval()
    prompt = torch.randint(0, 256, (1, 8), device="cuda", generator=torch.Generator("cuda").manual_seed(1))
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    with torch.no_grad():
        eager = ours.generate(prompt, disable_compile=True, **GREEDY)
        compiled = ours.generate(prompt, compile_config=CompileConfig(fullgraph=True, mode="reduce-overhead"),
                                 **GREEDY)
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] >= 1, "generate() did not compile the forward"
    assert_same_greedy_tokens(compiled, eager, 8)


@pytest.mark.gpu
def test_the_served_model_forward_replays_in_a_cuda_graph(tmp_path):
    write_checkpoint(tmp_path, symmetric=False)
    ours = fresh_model()
    load_into(ours, tmp_path)
    ours = ours.cuda().eval()
    x = torch.randint(0, 256, (2, 16), device="cuda")
    with torch.no_grad():
        want = ours(x).logits.clone()
        s = torch.cuda.Stream()
        s.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(s):
            for _ in range(2):
                ours(x)
        torch.cuda.current_stream().wait_stream(s)
        g = torch.cuda.CUDAGraph()
        with torch.cuda.graph(g):
            out = ours(x).logits
        x.copy_(torch.randint(0, 256, (2, 16), device="cuda"))
        g.replay()
        torch.cuda.synchronize()
        again = ours(x).logits
    torch.testing.assert_close(out, again, rtol=0, atol=0)    # the replay computed the new input
    assert not torch.equal(out, want)


@pytest.mark.gpu
def test_from_pretrained_puts_the_served_model_on_the_gpu(tmp_path):
    import w4a16_build

    write_checkpoint(tmp_path, symmetric=False)
    model, report = w4a16_build.from_pretrained(tmp_path)
    assert {p.device.type for p in model.parameters()} == {"cuda"}
    assert {b.device.type for b in model.buffers()} == {"cuda"}
    with torch.no_grad():
        out = model.generate(torch.zeros(1, 4, dtype=torch.long, device="cuda"), max_new_tokens=4, do_sample=False,
                             pad_token_id=0)
    assert out.shape == (1, 8)
