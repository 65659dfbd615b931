"""`python -m w4a16_build.bench`: W4A16 GEMM speed against fp16 cuBLAS, per benchmarks/README.md.

- Every figure is a ratio to fp16 cuBLAS for the same M, N, K, timed in the same process on the
  same card, and the card is named in the output. The baseline is the faster of the two weight
  layouts a user can have: W[N, K] (`F.linear`, x @ W.t()) and W[K, N] (x @ W).
- torch's own int4 kernel (tinygemm: `torch._weight_int4pack_mm`, bf16, group 128), the peer
  every PyTorch user already has, is timed in the same rounds where M <= 128.
- Cold L2: each timed pass rotates over enough weight copies to touch >= 4x the L2 size.
- No launch overhead: one call per weight copy is captured in a CUDA graph; graph replays are
  timed with CUDA events over rounds of >= 20 replays.
- cuBLAS (both layouts), tinygemm and the reported tactic are timed in interleaved rounds for each
  M, after a short idle, so all see the same clock (a large-M call leaves the card power-capped
  for a moment): 3 s of discarded warm-up rounds, then a balanced order, averaged
  (timing.time_interleaved). Ranked tactics (best / all) are timed one by one: the mean of 3
  rounds after a discarded one (timing.time_graph).
- Random int4 codes, random scales, random activations.

    python -m w4a16_build.bench --m 1,2,4,8,16 --json bench.json
    python -m w4a16_build.bench --shapes 4096x6144 --m 1 --tactic best
    python -m w4a16_build.bench --corpus qwen2.5-0.5b,gemma-2-2b --m 1,16   # real layers (benchmarks/shapes.yaml)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

import torch

from ._ext import build_info
from .dtypes import TORCH as DT
from .kernels import W4A16Error, as_cuda_device, can_implement, card_of, check_device, problem, tactics
from .runner import gemm, selected_tactic
from .timing import SETTLE_S, n_copies, random_packed, time_graph, time_interleaved, weight_bytes, weight_copies

# benchmarks/README.md: K x N of one linear layer each.
SHAPE_SET = [(4096, 6144), (4096, 28672), (14336, 4096), (8192, 8192), (8192, 57344), (28672, 8192)]
# Powers of two and the odd values real batches have (benchmarks/README.md).
DEFAULT_M = [1, 2, 3, 4, 7, 8, 12, 16, 24, 32, 48, 64, 96, 128, 200, 256, 512, 1024, 3000, 4096]
TINYGEMM_MAX_M = 128   # where the protocol times tinygemm: it is a small-batch kernel
SPEC_BW = {"H100": 3.35e12, "H200": 4.8e12}  # bytes/s, vendor spec of the SXM cards (kernels.CARDS)


def card_name() -> str:
    """The current device's short card name (kernels.card_of), as results record it."""
    return card_of(as_cuda_device())


def applicable(names, x, p, sms) -> list[str]:
    m = x.numel() // p.k
    prob = problem(x.view(m, p.k), p, x.view(m, p.k), sms=sms)  # out: any address with x's alignment
    return [t for t in names if can_implement(t, prob) == 0]


class CublasBench:
    """fp16 cuBLAS on rotating weight copies of one shape, in both layouts a user may hold."""

    LAYOUTS = ("linear", "matmul")   # W[N, K] used as x @ W.t() (F.linear); W[K, N] used as x @ W

    def __init__(self, k: int, n: int):
        self.k, self.n = k, n
        self.copies = n_copies(n * k * 2)
        self.w_nk = [torch.randn(n, k, device="cuda", dtype=torch.float16) for _ in range(self.copies)]
        self.w_kn = [torch.randn(k, n, device="cuda", dtype=torch.float16) for _ in range(self.copies)]

    def fns(self, m: int) -> dict:
        x = torch.randn(m, self.k, device="cuda", dtype=torch.float16)
        y = torch.empty(m, self.n, device="cuda", dtype=torch.float16)
        return {"linear": lambda i: torch.mm(x, self.w_nk[i].t(), out=y),
                "matmul": lambda i: torch.mm(x, self.w_kn[i], out=y)}


class TinygemmBench:
    """torch's int4 kernel (`torch._weight_int4pack_mm`: bf16 activations, group 128, a scale and a
    zero per group) on rotating copies of random codes; None where this torch or shape lacks it."""

    GROUP = 128
    INNER_K_TILES = 8   # torchao's default for this kernel

    def __init__(self, k: int, n: int):
        self.k, self.n = k, n
        self.error = None
        nbytes = n * k // 2 + n * (k // self.GROUP) * 4
        self.copies = n_copies(nbytes)
        try:
            self.w = [torch._convert_weight_to_int4pack(
                torch.randint(0, 256, (n, k // 2), dtype=torch.uint8, device="cuda"), self.INNER_K_TILES)
                for _ in range(self.copies)]
            self.sz = [torch.randn(k // self.GROUP, n, 2, device="cuda", dtype=torch.bfloat16) * 0.01
                       for _ in range(self.copies)]
            self.fn(1)(0)
            torch.cuda.synchronize()
        except (RuntimeError, AttributeError) as e:  # an old torch, or a shape it refuses
            self.error = f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"

    def fn(self, m: int):
        x = torch.randn(m, self.k, device="cuda", dtype=torch.bfloat16)
        return lambda i: torch._weight_int4pack_mm(x, self.w[i], self.GROUP, self.sz[i])


class OursBench:
    """W4A16 gemm() on rotating copies of one random packed weight."""

    def __init__(self, k, n, dtype, mode, group):
        self.k, self.n, self.dt = k, n, DT[dtype]
        self.dtype, self.mode = dtype, mode
        self.base = random_packed(n, k, dtype, mode, group)
        self.packs = weight_copies(self.base)
        self.copies = len(self.packs)
        self.sms = check_device(torch.device("cuda", torch.cuda.current_device()))

    def fn(self, m: int, tactic: str | None):
        x = torch.randn(m, self.k, device="cuda", dtype=self.dt)
        y = torch.empty(m, self.n, device="cuda", dtype=self.dt)
        return lambda i: gemm(x, self.packs[i], tactic=tactic, out=y)

    def picked(self, m: int) -> str:
        """The tactic gemm() selects by itself for this M."""
        return selected_tactic(torch.empty(m, self.k, device="cuda", dtype=self.dt), self.base)

    def rank(self, m: int, screen: float | None = None) -> list[tuple]:
        """Every applicable tactic: [(seconds, tactic, screened)], fastest first ('all' / 'best').

        screen: first time every candidate with one short round (2 replays)
        and give the full protocol only to those within (1 + screen) of the fastest short round;
        the others keep their short-round time and are marked screened. A sweep over hundreds of
        tactics needs this; the numbers quoted for chosen tactics always come from full timing.
        """
        k, n, packs = self.k, self.n, self.packs
        x = torch.randn(m, k, device="cuda", dtype=self.dt)
        y = torch.empty(m, n, device="cuda", dtype=self.dt)
        cands = applicable(tactics(self.dtype, self.mode, x.device), x, self.base, self.sms)

        def timed_or_none(t, **kw):
            try:
                return time_graph(lambda i: gemm(x, packs[i], tactic=t, out=y), self.copies, **kw)
            except W4A16Error as e:  # a refusal is a result; a CUDA fault is not caught
                print(f"warning: {t} at M={m}, {k}x{n}: {e}", file=sys.stderr)
                return None

        quick = {}
        if screen is not None and len(cands) > 1:
            quick = {t: sec for t in cands if (sec := timed_or_none(t, replays=2, repeats=1)) is not None}
            cands = list(quick)
            if not quick:
                return []
            fastest = min(quick.values())
        timed = []
        for t in cands:
            if quick and quick[t] > fastest * (1 + screen):
                timed.append((quick[t], t, True))
                continue
            sec = timed_or_none(t)
            if sec is not None:
                timed.append((sec, t, False))
        timed.sort(key=lambda r: (r[2], r[0], r[1]))
        return timed


def parse_shapes(text: str):
    if text == "set":
        return SHAPE_SET
    shapes = []
    for item in text.split(","):
        kk, nn = item.lower().split("x")
        shapes.append((int(kk), int(nn)))
    return shapes


def geomean(xs):
    xs = [x for x in xs if x > 0]
    return math.exp(sum(map(math.log, xs)) / len(xs)) if xs else float("nan")


def _document(args, card, ms, rows, t0, complete: bool) -> dict:
    """The JSON of a run: its rows so far and their geomeans; complete is False while layers are
    still to come (a run cut short by a time limit keeps the layers it finished)."""
    summary = {m: geomean([r["speedup"] for r in rows if r["m"] == m and r["rank"] == 0]) for m in ms}
    tiny_summary = {m: geomean([r["tinygemm_speedup"] for r in rows if r["m"] == m and r["rank"] == 0
                                and r["tinygemm_speedup"] is not None]) for m in ms if m <= TINYGEMM_MAX_M}
    return dict(card=card, device=torch.cuda.get_device_name(), torch=torch.__version__,
                build=build_info(), dtype=args.dtype, mode=args.mode, group=args.group, corpus=args.corpus,
                tactic=args.tactic, screen=args.screen, seconds=time.time() - t0, complete=complete, rows=rows,
                geomean_speedup={str(m): v for m, v in summary.items()},
                geomean_tinygemm_speedup={str(m): v for m, v in tiny_summary.items()})


def _listed(geomeans: dict) -> str:
    return ", ".join(f"M={m}: {v:.2f}" for m, v in geomeans.items())


def _write(path: str, doc: dict) -> None:
    tmp = path + ".part"
    try:
        with open(tmp, "w") as f:
            json.dump(doc, f, indent=1)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m w4a16_build.bench", description=__doc__.split("\n\n")[0])
    ap.add_argument("--shapes", default="set", help="'set' (benchmarks/README.md) or KxN,KxN,...")
    ap.add_argument("--corpus", metavar="SPEC",
                    help="instead of --shapes: the layers of real models (benchmarks/shapes.yaml): 'all', "
                         "model or family names, or 'odd', comma-separated")
    ap.add_argument("--m", default=",".join(map(str, DEFAULT_M)), help="comma-separated M values")
    ap.add_argument("--dtype", default="fp16", choices=list(DT))
    ap.add_argument("--mode", default="groupwise", choices=["per_column", "groupwise", "groupwise_zero"])
    ap.add_argument("--group", type=int, default=128)
    ap.add_argument("--tactic", default="auto",
                    help="'auto' (the selection logic), 'best' (fastest measured), 'all' (every applicable "
                         "tactic, fastest first) or a kernel name")
    ap.add_argument("--screen", type=float, default=None,
                    help="with all/best: time every tactic briefly first and fully only those within "
                         "this fraction of the fastest (e.g. 0.25); for sweeps over many tactics")
    ap.add_argument("--json", help="write the results to this JSON file")
    ap.add_argument("--plot", help="write a PNG of speed-up vs M, one line per shape (needs matplotlib)")
    args = ap.parse_args(argv)

    if not torch.cuda.is_available():
        print("error: no CUDA GPU", file=sys.stderr)
        return 2
    ms = [int(v) for v in args.m.split(",")]
    if args.corpus:
        from .corpus import shapes as corpus_shapes

        try:
            picked = corpus_shapes(args.corpus)
        except ValueError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        shapes, labels = [(k, n) for k, n, _ in picked], {(k, n): ls for k, n, ls in picked}
    else:
        shapes, labels = parse_shapes(args.shapes), {}
    card = card_name()
    bw = SPEC_BW.get(card)
    rows = []
    t0 = time.time()
    print(f"card: {torch.cuda.get_device_name()} ({card}); dtype {args.dtype}, mode {args.mode}, "
          f"group {args.group}, tactic {args.tactic}")
    print(f"{'K x N':>13} {'M':>5} {'ours us':>9} {'cuBLAS us':>10} {'speedup':>8} {'tinygemm':>8} {'HBM %':>6}"
          "  tactic   (speed-ups over the faster cuBLAS layout)")
    for k, n in shapes:
        if args.mode != "per_column" and k % args.group:
            print(f"warning: {k}x{n} skipped: K is not a multiple of group {args.group}", file=sys.stderr)
            continue
        cublas = CublasBench(k, n)
        ours = OursBench(k, n, args.dtype, args.mode, args.group)
        tiny = TinygemmBench(k, n) if any(m <= TINYGEMM_MAX_M for m in ms) else None
        if tiny is not None and tiny.error:
            print(f"warning: tinygemm not timed on {k}x{n}: {tiny.error}", file=sys.stderr)
        for m in ms:
            # cuBLAS and ours for the same M back to back, after a pause: a heavy call (large M)
            # leaves the card power-capped at a lower SM clock for a moment, which would
            # otherwise slow whichever small-M measurement comes next.
            time.sleep(SETTLE_S)
            if args.tactic in ("best", "all"):
                ranked = ours.rank(m, args.screen)
                if not ranked:
                    print(f"warning: no tactic can run M={m}, {k}x{n}", file=sys.stderr)
                    continue
                run_as, label = ranked[0][1], ranked[0][1]
            else:
                ranked = [(math.nan, "", False)]
                run_as = None if args.tactic == "auto" else args.tactic
                label = f"auto:{ours.picked(m)}" if args.tactic == "auto" else args.tactic
            # The reported figures: cuBLAS in both layouts, tinygemm (M <= 128) and the chosen
            # tactic in interleaved rounds, so that all see the same clock.
            timed = [(f, cublas.copies) for f in cublas.fns(m).values()] + [(ours.fn(m, run_as), ours.copies)]
            with_tiny = m <= TINYGEMM_MAX_M and tiny is not None and tiny.error is None
            if with_tiny:
                timed.append((tiny.fn(m), tiny.copies))
            secs = time_interleaved(timed)
            layouts = dict(zip(CublasBench.LAYOUTS, secs[:2]))
            layout = min(layouts, key=layouts.get)
            base, first = layouts[layout], secs[2]
            tiny_s = secs[3] if with_tiny else None
            ranked[0] = (first, label, False)
            if args.tactic == "best":
                ranked = ranked[:1]
            for rank, (sec, used, screened) in enumerate(ranked):
                frac = weight_bytes(n, k, args.mode, args.group) / sec / bw if bw else float("nan")
                row = dict(k=k, n=n, m=m, us=sec * 1e6, cublas_us=base * 1e6, speedup=base / sec,
                           hbm_fraction=frac, tactic=used, rank=rank, screened=screened,
                           layers=labels.get((k, n), []),
                           cublas_layout=layout, **{f"cublas_{name}_us": s * 1e6 for name, s in layouts.items()},
                           tinygemm_us=None if tiny_s is None else tiny_s * 1e6,
                           tinygemm_speedup=None if tiny_s is None else base / tiny_s)
                rows.append(row)
                if screened:
                    continue  # kept in the JSON, not worth a line each
                tiny_col = f"{row['tinygemm_speedup']:>8.2f}" if rank == 0 and tiny_s is not None else f"{'-':>8}"
                print(f"{k:>6}x{n:<6} {m:>5} {row['us']:>9.2f} {row['cublas_us']:>10.2f} {row['speedup']:>8.2f} "
                      f"{tiny_col} {100 * frac:>6.1f}  {used}", flush=True)
        del cublas, ours, tiny
        torch.cuda.empty_cache()
        if args.json:   # after every layer: a run stopped by a time limit keeps what it finished
            _write(args.json, _document(args, card, ms, rows, t0, complete=False))
    doc = _document(args, card, ms, rows, t0, complete=True)
    print("geomean speedup over fp16 cuBLAS: " + _listed(doc["geomean_speedup"]))
    if doc["geomean_tinygemm_speedup"]:
        print("tinygemm (bf16 g128), same rounds:  " + _listed(doc["geomean_tinygemm_speedup"]))
    if args.json:
        _write(args.json, doc)
    if args.plot:
        from .plot import plot

        plot(doc, args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
