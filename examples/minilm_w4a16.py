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
    import w4a16_build.packing  # noqa: F401

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
        # The same quantized weights, dequantized into plain fp16 nn.Linear layers:
        # separates the quantizer's error (fake vs fp16) from the kernels' (ours vs fake).
        fake = SentenceTransformer(a.model, device="cuda").half()
        with torch.no_grad():
            for name, lin in replaced.items():
                q = model.get_submodule(name)
                fake.get_submodule(name).weight.copy_(w4a16_build.dequantize_packed(q.packed).half())
            emb_fake = fake.encode(SENTENCES, convert_to_tensor=True).float()
        cos_fake = torch.nn.functional.cosine_similarity(emb_fake, ref, dim=-1)
        cos_kernel = torch.nn.functional.cosine_similarity(emb, emb_fake, dim=-1)
        results[mode] = {"replaced_layers": len(replaced), "kernel_calls": calls["n"],
                         "cosine_mean": cos.mean().item(), "cosine_min": cos.min().item(),
                         "cosine": [round(c, 5) for c in cos.tolist()],
                         "fake_quant_cosine_mean": cos_fake.mean().item(),
                         "ours_vs_fake_quant_cosine_min": cos_kernel.min().item()}
        print(f"{mode:>15}: replaced {len(replaced)} linear layers, {calls['n']} W4A16 calls, "
              f"cosine to fp16 mean {cos.mean():.4f} min {cos.min():.4f}; same weights in fp16 "
              f"nn.Linear: {cos_fake.mean():.4f}; ours vs that: min {cos_kernel.min():.6f}")
    if a.json:
        json.dump(results, open(a.json, "w"), indent=1)
    # The kernels must reproduce the quantized model; how close that is to fp16
    # is the quantizer's business (reported, not asserted).
    ok = all(results[m]["kernel_calls"] > 0 and results[m]["ours_vs_fake_quant_cosine_min"] > 0.999
             for m in ("groupwise_zero", "groupwise"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
