"""Static SASS of the ws kernel's loops (the figures in NOTES, "Twenty-third session"): for each
steady-state loop (a backward branch whose body holds wgmma or tensor copies), its instruction count,
the stages it covers (wgmma / 4 or expect-tx arrives) and the count per stage; plus ptxas' registers.

    python sass_counts.py [ROOT]      # ROOT: a checkout (default: this repository); needs nvcc and
                                      # cuobjdump on PATH (or CUOBJDUMP=...)
Compiles skinny_ws_kernel<half, groupwise, NT, 8> for NT = 8 (m64) and 4 (m32), sm_90a.
"""
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[3]
CUOBJDUMP = os.environ.get("CUOBJDUMP", "cuobjdump")
SRC = """#include "gemv/skinny_ws_launch.cuh"
using namespace w4a16;
void* f = (void*)skinny::skinny_ws_kernel<__half, QuantMode::kGroupwise, NT, 8>;
"""

for nt in (8, 4):
    with tempfile.TemporaryDirectory() as d:
        cu, cubin = Path(d) / "k.cu", Path(d) / "k.cubin"
        cu.write_text(SRC.replace("NT", str(nt)))
        r = subprocess.run(["nvcc", "-std=c++17", "-O3", "-gencode", "arch=compute_90a,code=sm_90a", "-I", str(ROOT),
                            "-I", str(ROOT / "csrc"), "-cubin", "-Xptxas", "-v", "-o", str(cubin), str(cu)],
                           capture_output=True, text=True, check=True)
        regs = re.search(r"Used (\d+) registers", r.stderr)[1]
        sass = subprocess.run([CUOBJDUMP, "-sass", str(cubin)], capture_output=True, text=True, check=True).stdout
    ins = [(int(m[1], 16), m[2]) for m in re.finditer(r"/\*([0-9a-f]{4})\*/\s+(.*?)\s*;", sass)]
    at = {a: i for i, (a, _) in enumerate(ins)}
    print(f"m{8 * nt} (NT = {nt}): {regs} registers")
    for i, (a, t) in enumerate(ins):
        m = re.search(r"\bBRA (0x[0-9a-f]+)", t)
        if not m or "BRA.U.ANY" in t or int(m[1], 16) >= a or int(m[1], 16) not in at:
            continue
        body = ins[at[int(m[1], 16)]:i + 1]
        if len(body) > 400:
            continue
        mma = sum("HGMMA" in x for _, x in body)
        arrives = sum(re.search(r"SYNCS\.ARRIVE\.TRANS64 RZ, \[.*\], R", x) is not None for _, x in body)
        copies = sum("UTMALDG" in x for _, x in body)
        if mma:
            print(f"  consumer loop: {len(body)} instructions, {mma // 4} stages: {len(body) / (mma // 4):.1f} per stage")
        elif copies and arrives:
            print(f"  producer loop: {len(body)} instructions, {arrives} stages: {len(body) / arrives:.1f} per stage")
