"""compressed-tensors `pack-quantized` import (issue 17). Checkpoints are written by the real
`compressed-tensors` library (scales and zero points from its own `calculate_qparams`, packed by
its `ModelCompressor`), loaded by ours, and compared with the library's own decompression."""

import json

import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed")
ct = pytest.importorskip("compressed_tensors", reason="compressed-tensors is not installed (pip install compressed-tensors)")

from compressed_tensors.compressors import ModelCompressor  # noqa: E402
from compressed_tensors.quantization import (QuantizationArgs, QuantizationConfig,  # noqa: E402
                                             QuantizationScheme, apply_quantization_config)
from compressed_tensors.quantization.utils import calculate_qparams  # noqa: E402

from w4a16_build.pack_quantized import check_config, load_pack_quantized  # noqa: E402
from w4a16_build.packing import dequantize_packed  # noqa: E402

STRATEGIES = [(sym, strat) for sym in (True, False) for strat in ("group", "channel")]


def write_with_library(n, k, group, symmetric, strategy, dtype, seed=0, bias=False, n2=136):
    """A model of two Linear layers (k -> n -> n2; n2 = 136 is not a multiple of 16) quantized and
    packed by compressed-tensors. Returns (state
    dict of the compressed model, its quantization_config as config.json holds it, the library's
    decompressed weights by layer name)."""
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(k, n, bias=bias), torch.nn.Linear(n, n2, bias=bias)).to(dtype)
    with torch.no_grad():
        for lin in model:
            lin.weight.mul_(3.0).add_(0.05)            # a non-zero mean, so zero points vary
    args = QuantizationArgs(num_bits=4, type="int", symmetric=symmetric, strategy=strategy,
                            group_size=group if strategy == "group" else None)
    cfg = QuantizationConfig(config_groups={"group_0": QuantizationScheme(targets=["Linear"], weights=args)})
    apply_quantization_config(model, cfg)
    for lin in model:
        w = lin.weight.detach().float()
        wg = w.reshape(w.shape[0], -1, group) if strategy == "group" else w.unsqueeze(1)
        s, z = calculate_qparams(wg.amin(-1), wg.amax(-1), args)
        lin.weight_scale.data.copy_(s.reshape(lin.weight_scale.shape).to(lin.weight_scale.dtype))
        if not symmetric:
            lin.weight_zero_point.data.copy_(z.reshape(lin.weight_zero_point.shape).to(lin.weight_zero_point.dtype))
    comp = ModelCompressor.from_pretrained_model(model, "pack-quantized")
    comp.compress_model(model)
    state = {name: t.detach().clone() for name, t in model.state_dict().items()}
    config = json.loads(json.dumps(comp.quantization_config.model_dump(exclude=["quant_method"]), default=str))
    comp.decompress_model(model)
    decompressed = {str(i): model[i].weight.detach().clone() for i in range(len(model))}
    return state, config, decompressed


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("symmetric, strategy", STRATEGIES)
def test_library_checkpoint_matches_the_librarys_decompression(symmetric, strategy, dtype):
    state, config, ref = write_with_library(192, 256, 64, symmetric, strategy, dtype)
    assert config["format"] == "pack-quantized"
    assert any(k.endswith(".weight_packed") for k in state)
    assert any(k.endswith(".weight_zero_point") for k in state) == (not symmetric)
    layers = load_pack_quantized(state, quantization_config=config)
    assert sorted(layers) == ["0", "1"]
    expected_mode = ("per_column" if strategy == "channel" else "groupwise") if symmetric else "groupwise_zero"
    for name, mod in layers.items():
        assert mod.mode == expected_mode and mod.dtype == dtype
        got = dequantize_packed(mod.packed)
        want = ref[name]
        assert got.shape == want.shape
        # Both round (q - zp) * s to the activation dtype once; allow that rounding.
        torch.testing.assert_close(got.float(), want.float(), rtol=1e-2 if dtype == torch.bfloat16 else 2e-3,
                                   atol=1e-3)


def test_a_saved_checkpoint_directory_loads_with_its_config(tmp_path):
    from safetensors.torch import save_file

    state, config, ref = write_with_library(64, 128, 64, False, "group", torch.float16, seed=3)
    save_file({f"model.{k}": v.contiguous() for k, v in state.items()}, str(tmp_path / "model.safetensors"))
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "test", "quantization_config": config}))
    layers = load_pack_quantized(tmp_path, prefix="model")
    assert sorted(layers) == ["0", "1"]
    torch.testing.assert_close(dequantize_packed(layers["1"].packed).float(), ref["1"].float(), rtol=2e-3, atol=1e-3)


@pytest.mark.parametrize("change, match", [
    (lambda w: w.update(num_bits=8), "num_bits=8"),
    (lambda w: w.update(type="float"), "type='float'"),
    (lambda w: w.update(strategy="tensor"), "strategy='tensor'"),
])
def test_what_is_not_int4_weights_is_refused_by_name(change, match):
    _, config, _ = write_with_library(64, 128, 64, True, "group", torch.float16)
    change(config["config_groups"]["group_0"]["weights"])
    with pytest.raises(ValueError, match=match):
        check_config(config)
    config["config_groups"]["group_0"]["format"] = "float-quantized"
    with pytest.raises(ValueError, match="only 'pack-quantized'"):
        check_config(config)


def test_bad_tensors_name_the_layer():
    state, _, _ = write_with_library(64, 128, 64, False, "group", torch.float16)
    broken = dict(state)
    broken["0.weight_zero_point"] = broken["0.weight_zero_point"][:, :1].contiguous()  # 2 groups -> 1
    with pytest.raises(ValueError, match=r"^0 \(pack-quantized\): weight_zero_point must be"):
        load_pack_quantized(broken)
    broken["0.weight_zero_point"] = state["0.weight_zero_point"]
    del broken["1.weight_scale"]
    with pytest.raises(ValueError, match="1: has weight_packed but no weight_scale"):
        load_pack_quantized(broken)


@pytest.mark.parametrize("change, match", [
    (lambda c: c.update(transform_config={"config_groups": {"u": {"type": "hadamard"}}}), "transform_config"),
    (lambda c: c.update(kv_cache_scheme={"num_bits": 8, "type": "float"}), "kv_cache_scheme"),
    (lambda c: c.update(sparsity_config={"format": "sparse-24-bitmask"}), "sparsity_config"),
    (lambda c: c.update(format=None) or c["config_groups"]["group_0"].update(format=None), "format None"),
    (lambda c: c.update(format="mixed-precision") or c["config_groups"]["group_0"].update(format="float-quantized"),
     "format 'float-quantized'"),
    (lambda c: c["config_groups"]["group_0"].update(output_activations={"num_bits": 8}), "output activations"),
    (lambda c: c["config_groups"]["group_0"]["weights"].update(dynamic=True), "dynamic=True"),
    (lambda c: c.update(config_groups={}), "no config_groups"),
])
def test_configs_that_change_what_the_weights_mean_are_refused(change, match):
    _, config, _ = write_with_library(64, 128, 64, True, "group", torch.float16)
    check_config(config)
    change(config)
    with pytest.raises(ValueError, match=match):
        check_config(config)


def test_a_group_format_overrides_the_top_level_one():
    _, config, _ = write_with_library(64, 128, 64, True, "group", torch.float16)
    config["format"] = "mixed-precision"
    check_config(config)          # every group says pack-quantized


def test_g_idx_of_all_minus_one_means_column_order_and_other_negatives_are_refused():
    """Older compressed-tensors registered weight_g_idx filled with -1 ("not set") and read such a
    g_idx as column order."""
    state, _, ref = write_with_library(64, 128, 64, False, "group", torch.float16)
    unset = dict(state)
    unset["0.weight_g_idx"] = torch.full((128,), -1, dtype=torch.int32)
    layer = load_pack_quantized(unset)["0"]
    assert layer.input_perm is None
    torch.testing.assert_close(dequantize_packed(layer.packed).float(), ref["0"].float(), rtol=2e-3, atol=1e-3)
    bad = torch.arange(128, dtype=torch.int32) // 64
    bad[5] = -1
    unset["0.weight_g_idx"] = bad
    with pytest.raises(ValueError, match=r"0 \(pack-quantized\): weight_g_idx must hold group indices"):
        load_pack_quantized(unset)
    bad[5] = 2
    with pytest.raises(ValueError, match="weight_g_idx must hold group indices"):
        load_pack_quantized(unset)
