"""End-to-end check on a real model: all-MiniLM-L6-v2 with its linear layers in W4A16.

    HF_HUB_OFFLINE=1 python examples/minilm_w4a16.py .models/minilm [--json out.json]

Embeds real sentences with the fp16 model, then with every nn.Linear replaced by
W4A16Linear (group 128) in the zero-point and the scale-only mode, and reports
the cosine similarity of each embedding to the fp16 one, and how many times our
kernels ran (counted by forward hooks on the replaced layers).
"""

import argparse
import json
import os
import sys

import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "A man is playing a guitar on the stage.",
    "Quantization stores each weight in four bits and a scale per group.",
    "The weather in Lisbon is mild and sunny in spring.",
    "Graph neural networks pass messages between neighbouring nodes.",
    "She ordered a coffee and sat by the window to read.",
    "Stock markets fell sharply after the announcement.",
    "The children built a sandcastle at the beach.",
    "Hopper GPUs add tensor memory accelerators and thread block clusters.",
    "He forgot his umbrella and got soaked on the way home.",
    "The recipe calls for two eggs, flour and a pinch of salt.",
    "Astronomers detected water vapour in the atmosphere of an exoplanet.",
]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--json")
    a = ap.parse_args(argv)
    from sentence_transformers import SentenceTransformer

    import w4a16_build

    results = {"card": torch.cuda.get_device_name(), "sentences": len(SENTENCES)}
    ref_model = SentenceTransformer(a.model, device="cuda").half()
    with torch.no_grad():
        ref = ref_model.encode(SENTENCES, convert_to_tensor=True).float()
    for mode in ("groupwise_zero", "groupwise"):
        model = SentenceTransformer(a.model, device="cuda").half()
        replaced = w4a16_build.replace_linears(model, group_size=128, mode=mode)
        calls = {"n": 0}
        for mod in model.modules():
            if isinstance(mod, w4a16_build.W4A16Linear):
                mod.register_forward_hook(lambda *_: calls.__setitem__("n", calls["n"] + 1))
        with torch.no_grad():
            emb = model.encode(SENTENCES, convert_to_tensor=True).float()
        cos = torch.nn.functional.cosine_similarity(emb, ref, dim=-1)
        results[mode] = {"replaced_layers": len(replaced), "kernel_calls": calls["n"],
                         "cosine_mean": cos.mean().item(), "cosine_min": cos.min().item(),
                         "cosine": [round(c, 5) for c in cos.tolist()]}
        print(f"{mode:>15}: replaced {len(replaced)} linear layers, {calls['n']} W4A16 calls, "
              f"cosine to fp16 mean {cos.mean():.4f} min {cos.min():.4f}")
    if a.json:
        json.dump(results, open(a.json, "w"), indent=1)
    ok = all(results[m]["kernel_calls"] > 0 and results[m]["cosine_mean"] > 0.98
             for m in ("groupwise_zero", "groupwise"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
