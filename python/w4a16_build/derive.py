"""`python -m w4a16_build.derive`: benchmark results -> the smallest manifest and heuristic rows."""

from __future__ import annotations

import sys

from .schema import generator_module


def main(argv=None) -> int:
    return generator_module("derive").main(argv)


if __name__ == "__main__":
    sys.exit(main())
