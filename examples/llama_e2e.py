"""What W4A16 buys end to end: a decoder with Llama-3-8B's layer shapes, fp16 vs W4A16 g128.

    python examples/llama_e2e.py [--model llama-3-8b|tiny] [--batches 1,8,32] [--json e2e.json] [--plot e2e.png]

The weights are random (normal, std 0.02, as transformers initializes Llama): no model hub is
reachable from the GPU machine this was measured on, and speed does not depend on the values.
The decoder is a plain PyTorch Llama (RMSNorm, rotary embeddings, grouped-query attention through
scaled_dot_product_attention over a static KV cache, SwiGLU MLP), the same code for both runs; only
the seven projections of every layer differ: fp16 nn.Linear holding the *dequantized* W4A16
weights, or W4A16Linear (RTN, group 128) holding the same weights packed. The embedding and the LM
head stay fp16 in both, as GPTQ/AWQ checkpoints keep them.

Printed and saved (--json):
- decode tokens/s at each batch size: one decode step captured in a CUDA graph (static cache,
  fixed shapes), replayed `--steps` - 1 times after a `--prompt`-token prefill (which gives the
  first token), the argmax fed back between replays (timed with them); rounds alternate fp16 / W4A16 so neither always runs on a power-capped card;
  also the same step with the seven projections left out (they return zero tensors made before
  capture, so nothing runs in their place), so the time of
  the projections alone is the difference (attention, norms, rotary, embedding and LM head are
  the rest, the same in both runs);
- prefill time of `--prefill` tokens at batch 1 (eager, median of several);
- greedy check: the first 32 tokens of W4A16 and of fp16 on the dequantized weights, batch 1,
  and where they part, the fp16 model's margin between its two best logits at that step.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys

import torch
import torch.nn.functional as F
from torch import nn

CONFIGS = {
    # Llama-3-8B (meta-llama/Meta-Llama-3-8B config.json)
    "llama-3-8b": dict(hidden=4096, inter=14336, layers=32, heads=32, kv_heads=8, vocab=128256, rope_theta=500000.0),
    # a small one for a quick check of the script itself
    "tiny": dict(hidden=512, inter=1536, layers=2, heads=8, kv_heads=2, vocab=4096, rope_theta=10000.0),
}
PROJ = ("q", "k", "v", "o", "gate", "up", "down")
ZEROS: dict = {}        # shape -> zero tensor, for the step without projections (Block.zeros)


class Block(nn.Module):
    def __init__(self, c, dtype, device):
        super().__init__()
        h, d = c["hidden"], c["hidden"] // c["heads"]
        shapes = {"q": (h, h), "k": (h, c["kv_heads"] * d), "v": (h, c["kv_heads"] * d), "o": (h, h),
                  "gate": (h, c["inter"]), "up": (h, c["inter"]), "down": (c["inter"], h)}
        self.dense = nn.ModuleDict({p: nn.Linear(*shapes[p], bias=False, dtype=dtype, device=device) for p in PROJ})
        self.w4 = nn.ModuleDict()
        self.norm1 = nn.RMSNorm(h, eps=1e-5, dtype=dtype, device=device)
        self.norm2 = nn.RMSNorm(h, eps=1e-5, dtype=dtype, device=device)
        self.heads, self.kv_heads, self.head_dim = c["heads"], c["kv_heads"], d
        self.kind = "dense"

    def lin(self, p):
        if self.kind == "none":           # the projections left out: what the rest of a step costs
            return lambda h: self.zeros(p, h)
        return (self.w4 if self.kind == "w4a16" else self.dense)[p]

    def zeros(self, p, h):
        """A zero output made once per shape (at the warm-up, before graph capture) and shared by
        all layers (nothing writes into it), so the step without projections launches no kernel
        in their place."""
        shape = (*h.shape[:-1], self.dense[p].out_features)
        if shape not in ZEROS:
            ZEROS[shape] = h.new_zeros(shape)
        return ZEROS[shape]

    def forward(self, x, cos, sin, pos, mask, kc, vc):
        b, t, _ = x.shape
        h = self.norm1(x)
        q = self.lin("q")(h).view(b, t, self.heads, self.head_dim).transpose(1, 2)
        k = self.lin("k")(h).view(b, t, self.kv_heads, self.head_dim).transpose(1, 2)
        v = self.lin("v")(h).view(b, t, self.kv_heads, self.head_dim).transpose(1, 2)
        q, k = rope(q, cos, sin), rope(k, cos, sin)
        kc.index_copy_(2, pos, k)
        vc.index_copy_(2, pos, v)
        a = F.scaled_dot_product_attention(q, kc, vc, attn_mask=mask, enable_gqa=True)
        x = x + self.lin("o")(a.transpose(1, 2).reshape(b, t, -1))
        h = self.norm2(x)
        return x + self.lin("down")(F.silu(self.lin("gate")(h)) * self.lin("up")(h))


def rope(x, cos, sin):
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((x1 * cos - x2 * sin, x2 * cos + x1 * sin), dim=-1)


class Decoder(nn.Module):
    def __init__(self, c, dtype=torch.float16, device="cuda"):
        super().__init__()
        self.c = c
        self.embed = nn.Embedding(c["vocab"], c["hidden"], dtype=dtype, device=device)
        self.blocks = nn.ModuleList(Block(c, dtype, device) for _ in range(c["layers"]))
        self.norm = nn.RMSNorm(c["hidden"], eps=1e-5, dtype=dtype, device=device)
        self.head = nn.Linear(c["hidden"], c["vocab"], bias=False, dtype=dtype, device=device)
        with torch.no_grad():
            for p in self.parameters():
                if p.dim() == 2:
                    p.normal_(0.0, 0.02)
        self.dtype, self.device = dtype, torch.device(device)
        self.kc = self.vc = None

    def use(self, kind):
        for b in self.blocks:
            b.kind = kind

    def reset_cache(self, batch, length):
        c, d = self.c, self.c["hidden"] // self.c["heads"]
        shape = (c["layers"], batch, c["kv_heads"], length, d)
        self.kc = self.vc = None
        self.kc = torch.zeros(shape, dtype=self.dtype, device=self.device)
        self.vc = torch.zeros(shape, dtype=self.dtype, device=self.device)
        d2 = torch.arange(0, d, 2, device=self.device, dtype=torch.float32) / d
        ang = torch.arange(length, device=self.device, dtype=torch.float32)[:, None] / c["rope_theta"] ** d2
        self.cos, self.sin = ang.cos().to(self.dtype), ang.sin().to(self.dtype)
        self.key_pos = torch.arange(length, device=self.device)

    def forward(self, tokens, pos):
        """tokens [B, T] at positions pos [T] (int64, on the device) -> logits of the last one [B, V]."""
        x = self.embed(tokens)
        cos, sin = self.cos[pos], self.sin[pos]
        mask = self.key_pos[None, :] <= pos[:, None]          # [T, L]: causal over the static cache
        for i, b in enumerate(self.blocks):
            x = b(x, cos, sin, pos, mask, self.kc[i], self.vc[i])
        return self.head(self.norm(x[:, -1]))


def quantize(model, group=128):
    """W4A16Linear (RTN, `group`) for every projection; the fp16 layer then holds the dequantized
    weight, so both runs compute with the same weights."""
    from w4a16_build.nn import W4A16Linear
    from w4a16_build.packing import dequantize_packed

    for b in model.blocks:
        for p in PROJ:
            w4 = W4A16Linear.from_linear(b.dense[p], group_size=group)
            with torch.no_grad():
                b.dense[p].weight.copy_(dequantize_packed(w4.packed))
            b.w4[p] = w4


def graph_step(model, batch):
    """A CUDA graph of one decode step at `batch`: (graph, token in [B,1], position in [1], logits)."""
    tok = torch.zeros(batch, 1, dtype=torch.long, device=model.device)
    pos = torch.zeros(1, dtype=torch.long, device=model.device)
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for _ in range(2):
            model(tok, pos)
    torch.cuda.current_stream().wait_stream(s)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        logits = model(tok, pos)
    return g, tok, pos, logits


@torch.no_grad()
def decode_run(model, kind, batch, prompt, steps, seed=0, margins=False):
    """(tokens/s, generated tokens [B, steps], per-step top-2 logit margins of row 0 when
    `margins`: they cost kernels of their own, so timed runs leave them out)."""
    model.use(kind)
    model.reset_cache(batch, prompt + steps)
    gen = torch.Generator(device=model.device).manual_seed(seed)
    ids = torch.randint(0, model.c["vocab"], (batch, prompt), device=model.device, generator=gen)
    g, tok, pos, logits = graph_step(model, batch)      # its warm-up writes position 0; the prompt overwrites it
    first = model(ids, torch.arange(prompt, device=model.device))
    tok.copy_(first.argmax(-1, keepdim=True))
    out, tops = [tok[:, 0].clone()], [first[0].float().topk(2).values]
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    torch.cuda.synchronize()
    start.record()
    for i in range(steps - 1):
        pos.fill_(prompt + i)
        g.replay()
        tok.copy_(logits.argmax(-1, keepdim=True))
        out.append(tok[:, 0].clone())
        if margins:
            tops.append(logits[0].float().topk(2).values)
    end.record()
    torch.cuda.synchronize()
    ms = start.elapsed_time(end)
    del g
    ZEROS.clear()
    return batch * (steps - 1) / (ms / 1e3), torch.stack(out, 1), [float(t[0] - t[1]) for t in tops]


@torch.no_grad()
def prefill_ms(model, kind, tokens, reps=5):
    model.use(kind)
    model.reset_cache(1, tokens)
    ids = torch.randint(0, model.c["vocab"], (1, tokens), device=model.device)
    pos = torch.arange(tokens, device=model.device)
    model(ids, pos)
    times = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        model(ids, pos)
        b.record()
        torch.cuda.synchronize()
        times.append(a.elapsed_time(b))
    return statistics.median(times)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", choices=sorted(CONFIGS), default="llama-3-8b")
    ap.add_argument("--batches", default="1,8,32")
    ap.add_argument("--prompt", type=int, default=512, help="prompt tokens before the timed decode steps")
    ap.add_argument("--steps", type=int, default=128, help="decode steps timed (graph replays)")
    ap.add_argument("--prefill", type=int, default=2048)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--check-steps", type=int, default=32)
    ap.add_argument("--json")
    ap.add_argument("--plot")
    a = ap.parse_args(argv)
    if not torch.cuda.is_available():
        sys.exit("needs a CUDA GPU")
    card = torch.cuda.get_device_name()
    c = CONFIGS[a.model]
    torch.manual_seed(0)
    model = Decoder(c)
    quantize(model)
    torch.cuda.empty_cache()
    batches = [int(b) for b in a.batches.split(",")]
    res = {"card": card, "model": a.model, "config": c, "torch": torch.__version__, "prompt": a.prompt,
           "steps": a.steps, "weights": "random (normal, std 0.02)", "group": 128, "decode": {}, "prefill": {}}

    # Greedy check: same prompt, 32 tokens each.
    _, ta, _ = decode_run(model, "w4a16", 1, a.prompt, a.check_steps, seed=1)
    _, tb, mb = decode_run(model, "dense", 1, a.prompt, a.check_steps, seed=1, margins=True)
    same = int((ta[0] == tb[0]).long().cumprod(0).sum())
    res["greedy"] = {"steps": a.check_steps, "equal_prefix": same,
                     "margin_at_split": None if same == a.check_steps else mb[same],
                     "min_margin": min(mb)}
    print(f"{card}  {a.model}  greedy tokens equal for {same}/{a.check_steps} steps"
          + ("" if same == a.check_steps else f" (fp16's top-2 logit margin at step {same}: {mb[same]:.4f})"))

    for b in batches:
        runs = {"dense": [], "w4a16": [], "none": []}
        for r in range(a.rounds):
            for kind in (("dense", "w4a16", "none") if r % 2 == 0 else ("none", "w4a16", "dense")):
                runs[kind].append(decode_run(model, kind, b, a.prompt, a.steps)[0])
        d = {k: statistics.median(v) for k, v in runs.items()}
        step = {k: 1e3 * b / v for k, v in d.items()}          # ms per decode step
        d["step_ms"] = step
        d["projections_ms"] = {k: step[k] - step["none"] for k in ("dense", "w4a16")}
        res["decode"][b] = d
        pr = d["projections_ms"]
        print(f"decode batch {b:3d}: fp16 {d['dense']:9.1f} tok/s   W4A16 {d['w4a16']:9.1f} tok/s   "
              f"x{d['w4a16'] / d['dense']:.2f}   | ms/step: fp16 {step['dense']:.2f}  W4A16 {step['w4a16']:.2f}  "
              f"without projections {step['none']:.2f}: projections fp16 {pr['dense']:.2f}  W4A16 {pr['w4a16']:.2f} "
              f"(x{pr['dense'] / pr['w4a16']:.2f})")
    model.kc = model.vc = None
    torch.cuda.empty_cache()
    for kind in ("dense", "w4a16", "dense", "w4a16"):
        res["prefill"].setdefault(kind, []).append(prefill_ms(model, kind, a.prefill))
    p = {k: min(v) for k, v in res["prefill"].items()}
    res["prefill"] = {"tokens": a.prefill, **p}
    print(f"prefill {a.prefill} tokens: fp16 {p['dense']:.1f} ms   W4A16 {p['w4a16']:.1f} ms   "
          f"x{p['dense'] / p['w4a16']:.2f}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1)
    if a.plot:
        plot(res, a.plot)
    return res


def plot(res, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bs = sorted(res["decode"], key=int)
    x = range(len(bs))
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.bar([i - 0.2 for i in x], [res["decode"][b]["dense"] for b in bs], 0.4, label="fp16")
    ax.bar([i + 0.2 for i in x], [res["decode"][b]["w4a16"] for b in bs], 0.4, label="W4A16 g128")
    for i, b in zip(x, bs):
        d = res["decode"][b]
        ax.text(i + 0.2, d["w4a16"], f"x{d['w4a16'] / d['dense']:.2f}", ha="center", va="bottom", fontsize=8)
    ax.set_xticks(list(x), [f"batch {b}" for b in bs])
    ax.set_ylabel("decode tokens/s")
    ax.set_title(f"{res['model']} shapes (random weights), CUDA graphs, on {res['card']}", fontsize=9)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
