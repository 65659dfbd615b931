"""`python -m w4a16_build.generate`: list or generate a manifest's kernels (no CUDA needed)."""

from __future__ import annotations

import sys


def _cli():
    try:  # installed wheel: the generator ships as w4a16_build._generator
        from ._generator import cli
    except ImportError:  # source checkout: the top-level generator/ package
        from pathlib import Path

        root = Path(__file__).resolve().parents[2]
        if not (root / "generator" / "cli.py").is_file():
            raise
        sys.path.insert(0, str(root))
        from generator import cli
    return cli


def main(argv=None) -> int:
    return _cli().main(argv)


if __name__ == "__main__":
    sys.exit(main())
