"""The shape corpus: the linear layers of real models (benchmarks/shapes.yaml), K x N each.

The YAML holds each model's architecture as its config.json states it (hidden size, MLP and
expert sizes, heads, vocabulary, MLA ranks) and where that was read; the layer shapes are derived
here, by one rule per layer kind, so a shape can be checked against its source:

    qkv      K = hidden               N = (heads + 2 * kv_heads) * head_dim
    o        K = heads * head_dim     N = hidden      (MLA: heads * v_head_dim)
    gate_up  K = hidden               N = 2 * intermediate        (dense MLP, where the model has one)
    up       K = hidden               N = intermediate            (instead of gate_up: `gated: false`)
    down     K = intermediate         N = hidden
    expert_gate_up / expert_down       the same with the expert's intermediate size (MoE)
    shared_gate_up / shared_down       the same with shared experts * expert intermediate (MoE)
    lm_head  K = hidden               N = vocab
    MLA (DeepSeek): q_a / q_b (or q), kv_a, kv_b projections from the LoRA ranks and head dims.

Plus `odd`: sizes that stress tails (N not a multiple of 64, K only a multiple of 64).

    layers("all") / layers("qwen2.5-7b") / layers("qwen2.5") / layers("odd") / layers("a,b")
"""

from __future__ import annotations

import dataclasses
import functools
from importlib import resources
from pathlib import Path

import yaml


@dataclasses.dataclass(frozen=True)
class Layer:
    model: str      # "qwen2.5-7b", or "odd"
    family: str     # "qwen2.5"
    params_b: float  # billions of parameters (total, for MoE)
    kind: str       # "qkv", "o", "gate_up", "down", "expert_down", "lm_head", ...
    k: int
    n: int

    @property
    def label(self) -> str:
        return f"{self.model}/{self.kind}"


def corpus_path() -> Path:
    """benchmarks/shapes.yaml: installed beside the package (_data/), or in a source checkout."""
    installed = resources.files(__package__).joinpath("_data", "shapes.yaml")
    if installed.is_file():
        return Path(str(installed))
    return Path(__file__).resolve().parents[2] / "benchmarks" / "shapes.yaml"


@functools.lru_cache(maxsize=None)
def load(path: str | None = None) -> dict:
    p = Path(path) if path else corpus_path()
    doc = yaml.safe_load(p.read_text())
    if not isinstance(doc, dict) or not isinstance(doc.get("models"), dict):
        raise ValueError(f"{p}: expected a mapping with `models:`")
    return doc


def _mlp(prefix: str, hidden: int, inter: int, gated: bool = True) -> list[tuple[str, int, int]]:
    up = (f"{prefix}gate_up", hidden, 2 * inter) if gated else (f"{prefix}up", hidden, inter)
    return [up, (f"{prefix}down", inter, hidden)]


def model_layers(name: str, a: dict) -> list[Layer]:
    """The distinct linear layers of one model from its architecture numbers."""
    h, heads = a["hidden"], a["heads"]
    out: list[tuple[str, int, int]] = []
    mla = a.get("mla")
    if mla:
        qk = mla["qk_nope_head_dim"] + mla["qk_rope_head_dim"]
        if mla.get("q_lora_rank"):
            out += [("q_a", h, mla["q_lora_rank"]), ("q_b", mla["q_lora_rank"], heads * qk)]
        else:
            out += [("q", h, heads * qk)]
        out += [("kv_a", h, mla["kv_lora_rank"] + mla["qk_rope_head_dim"]),
                ("kv_b", mla["kv_lora_rank"], heads * (mla["qk_nope_head_dim"] + mla["v_head_dim"])),
                ("o", heads * mla["v_head_dim"], h)]
    else:
        hd = a.get("head_dim") or h // heads
        out += [("qkv", h, (heads + 2 * a["kv_heads"]) * hd), ("o", heads * hd, h)]
    moe = a.get("moe")
    if not moe or moe.get("dense_layers", 0) > 0:
        out += _mlp("", h, a["intermediate"], a.get("gated", True))
    if moe:
        out += _mlp("expert_", h, moe["expert_intermediate"])
        if moe.get("shared", 0):
            out += _mlp("shared_", h, moe["shared"] * moe["expert_intermediate"])
    out.append(("lm_head", h, a["vocab"]))
    seen, layers = set(), []
    for kind, k, n in out:
        if (k, n) not in seen:
            seen.add((k, n))
            layers.append(Layer(name, a["family"], float(a["params_b"]), kind, k, n))
    return layers


def all_layers(path: str | None = None) -> list[Layer]:
    doc = load(path)
    layers = [layer for name, a in doc["models"].items() for layer in model_layers(name, a)]
    layers += [Layer("odd", "odd", 0.0, kind, k, n) for kind, (k, n) in (doc.get("odd") or {}).items()]
    return layers


def layers(spec: str, path: str | None = None) -> list[Layer]:
    """Layers of "all", or of comma-separated model names, family names or "odd"."""
    every = all_layers(path)
    if spec == "all":
        return every
    picked = []
    for part in (s.strip() for s in spec.split(",") if s.strip()):
        match = [x for x in every if part in (x.model, x.family)]
        if not match:
            names = sorted({x.model for x in every} | {x.family for x in every})
            raise ValueError(f"corpus: no model or family {part!r}; known: {', '.join(names)}")
        picked += [x for x in match if x not in picked]
    return picked


def shapes(spec: str, path: str | None = None) -> list[tuple[int, int, list[str]]]:
    """Distinct (K, N) of the selected layers, in corpus order, with the layers of each."""
    by_shape: dict[tuple[int, int], list[str]] = {}
    for layer in layers(spec, path):
        by_shape.setdefault((layer.k, layer.n), []).append(layer.label)
    return [(k, n, labels) for (k, n), labels in by_shape.items()]
