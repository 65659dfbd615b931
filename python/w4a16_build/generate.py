"""`python -m w4a16_build.generate`: list or generate a manifest's kernels (no CUDA needed)."""

from __future__ import annotations

import sys

from .schema import generator_module


def main(argv=None) -> int:
    return generator_module("cli").main(argv)


if __name__ == "__main__":
    sys.exit(main())
