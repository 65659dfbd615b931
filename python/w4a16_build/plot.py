"""Speed-up over fp16 cuBLAS against M, one line per shape, from a bench JSON (matplotlib optional)."""

from __future__ import annotations

import json
import sys


def plot(doc: dict, path: str) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise RuntimeError("the plot needs matplotlib (pip install matplotlib); the table and JSON do not") from e
    rows = [r for r in doc["rows"] if r.get("rank", 0) == 0]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for k, n in sorted({(r["k"], r["n"]) for r in rows}):
        pts = sorted((r["m"], r["speedup"]) for r in rows if (r["k"], r["n"]) == (k, n))
        ax.plot([m for m, _ in pts], [s for _, s in pts], marker="o", label=f"K={k} N={n}")
    ax.axhline(1.0, color="grey", lw=0.8, ls="--")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("M (tokens)")
    ax.set_ylabel("speed-up over fp16 cuBLAS")
    ax.set_title(f"W4A16 {doc.get('dtype')} {doc.get('mode')} g{doc.get('group')} on {doc.get('card')} "
                 f"(tactic {doc.get('tactic')})", fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    plot(json.load(open(sys.argv[1])), sys.argv[2])
