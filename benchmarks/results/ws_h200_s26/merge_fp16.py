"""The fp16 table of this session in one file: `default203_h200_fp16_auto.json` stopped (its time
limit) after five shapes; the sixth shape's rows M = 1-64 are in that run's printed table
(`default203_h200_fp16_auto.txt`, written per point), M = 128-4096 in a second run
(`default203_h200_fp16_auto_rest.json`, `--shapes 28672x8192`). Writes
`default203_h200_fp16_auto_merged.json` and prints the geomean per M. The rows taken from the text
carry only the printed columns, their speed-ups rounded to two decimals.

    python merge_fp16.py
"""
import json
import math
import re
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main():
    doc = json.loads((HERE / "default203_h200_fp16_auto.json").read_text())
    rest = json.loads((HERE / "default203_h200_fp16_auto_rest.json").read_text())
    have = {(r["k"], r["n"], r["m"]) for r in doc["rows"]}
    line = re.compile(r"\s*(\d+)x(\d+)\s+(\d+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+|-)\s+([\d.]+)\s+auto:(\S+)")
    added = []
    for text in (HERE / "default203_h200_fp16_auto.txt").read_text().splitlines():
        m = line.match(text)
        if not m:
            continue
        k, n, mm = int(m[1]), int(m[2]), int(m[3])
        if (k, n, mm) in have:
            continue
        have.add((k, n, mm))
        added.append({"k": k, "n": n, "m": mm, "us": float(m[4]), "cublas_us": float(m[5]), "speedup": float(m[6]),
                      "tinygemm_speedup": None if m[7] == "-" else float(m[7]), "tactic": "auto:" + m[9], "rank": 0,
                      "from": "printed table"})
    rows = doc["rows"] + added + [r for r in rest["rows"] if (r["k"], r["n"], r["m"]) not in
                                  {(a["k"], a["n"], a["m"]) for a in doc["rows"] + added}]
    ms = sorted({r["m"] for r in rows})
    geo = {}
    tiny = {}
    for m in ms:
        pts = [r for r in rows if r["m"] == m and r.get("rank", 0) == 0]
        geo[m] = math.exp(sum(math.log(r["speedup"]) for r in pts) / len(pts))
        t = [r["tinygemm_speedup"] for r in pts if r.get("tinygemm_speedup")]
        if t:
            tiny[m] = math.exp(sum(map(math.log, t)) / len(t))
        print(f"M={m}: {geo[m]:.2f} over {len(pts)} shapes" + (f", tinygemm {tiny[m]:.2f}" if m in tiny else ""))
    out = dict(doc, rows=rows, complete=len(rows) == 72, geomean_speedup={str(m): g for m, g in geo.items()},
               geomean_tinygemm_speedup={str(m): t for m, t in tiny.items()},
               merged_from=["default203_h200_fp16_auto.json", "default203_h200_fp16_auto.txt (28672x8192, M 1-64)",
                            "default203_h200_fp16_auto_rest.json"])
    (HERE / "default203_h200_fp16_auto_merged.json").write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
