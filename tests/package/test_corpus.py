"""The shape corpus (benchmarks/shapes.yaml) and the layer shapes derived from it (no GPU)."""

import pytest

pytest.importorskip("yaml", reason="PyYAML is not installed")

from w4a16_build import corpus  # noqa: E402


def test_corpus_spans_families_and_sizes():
    doc = corpus.load()
    models = doc["models"]
    assert len({a["family"] for a in models.values()}) >= 15
    sizes = [a["params_b"] for a in models.values()]
    assert min(sizes) <= 0.5 and max(sizes) >= 405
    for name, a in models.items():
        assert a.get("source"), f"{name}: say where its numbers were read"


def test_every_model_has_its_layer_kinds():
    for name, a in corpus.load()["models"].items():
        kinds = {layer.kind for layer in corpus.model_layers(name, a)}
        assert {"o", "lm_head"} <= kinds, name
        assert kinds & {"qkv", "q", "q_a"}, name
        if a.get("moe"):
            assert {"expert_gate_up", "expert_down"} <= kinds, name
        else:
            assert "down" in kinds and kinds & {"gate_up", "up"}, name


def test_every_shape_is_one_the_kernels_take():
    # pack() needs K % 64 == 0 and N % 8 == 0 (quant.py). A few real layers have K % 128 != 0
    # (DeepSeek-V2-Lite's dense down projection, K = 10944): group 64 serves them; the bench skips
    # them at group 128.
    for layer in corpus.all_layers():
        assert layer.k % 64 == 0 and layer.n % 8 == 0, layer


def test_layer_rules_on_known_shapes():
    by = {(x.model, x.kind): (x.k, x.n) for x in corpus.all_layers()}
    assert by[("llama-3.1-405b", "qkv")] == (16384, 18432)          # (128 + 2*8) * 128
    assert by[("llama-3.1-405b", "gate_up")] == (16384, 106496)
    assert by[("qwen2.5-0.5b", "qkv")] == (896, 1152)               # (14 + 2*2) * 64
    assert by[("gemma-2-2b", "o")] == (2048, 2304)                   # 8 heads of 256 -> hidden
    assert by[("deepseek-v3", "kv_b")] == (512, 32768)               # 128 * (128 + 128)
    assert by[("deepseek-v3", "expert_down")] == (2048, 7168)
    assert by[("falcon-7b", "qkv")] == (4544, 4672)                  # 71 heads + 2 * 1 (MQA) of 64
    assert by[("falcon-7b", "up")] == (4544, 18176)                  # not gated
    assert by[("glm-4-9b", "qkv")] == (4096, 4608)                   # 32 + 2 * 2 groups of 128


def test_odd_sizes_stress_the_tails():
    odd = [x for x in corpus.all_layers() if x.model == "odd"]
    assert any(x.n % 64 for x in odd) and any(x.k % 128 for x in odd)


def test_selection_by_model_family_and_errors():
    qwen = corpus.layers("qwen2.5")
    assert {x.model for x in qwen} >= {"qwen2.5-0.5b", "qwen2.5-7b"}
    one = corpus.layers("qwen2.5-0.5b,odd")
    assert {x.model for x in one} == {"qwen2.5-0.5b", "odd"}
    with pytest.raises(ValueError, match="no model or family 'nope'"):
        corpus.layers("nope")
    shapes = corpus.shapes("all")
    assert len({(k, n) for k, n, _ in shapes}) == len(shapes)
    assert all(labels for _, _, labels in shapes)


def test_the_corpus_is_found_installed_or_in_a_checkout():
    """An installed wheel carries it as w4a16_build/_data/shapes.yaml (CMakeLists.txt)."""
    assert corpus.corpus_path().is_file()
