"""The generator's typed model, as the runtime uses it: the one definition of a kernel configuration.

An installed wheel ships the generator as `w4a16_build._generator`; a source checkout has it as
the top-level `generator/` package beside `python/`. The compiled registry holds kernel names
only, and `parse_name` turns each into its configuration (generator/model.py).
"""

from __future__ import annotations

import functools
import importlib
import sys
from pathlib import Path


@functools.lru_cache(maxsize=None)
def generator_module(name: str):
    """generator.<name>: from the wheel's _generator, else from a source checkout."""
    try:
        return importlib.import_module(f"{__package__}._generator.{name}")
    except ModuleNotFoundError as e:
        # Only a missing _generator (a source checkout) falls back; an error inside it is raised.
        if e.name not in (f"{__package__}._generator", f"{__package__}._generator.{name}"):
            raise
        root = Path(__file__).resolve().parents[2]
        if not (root / "generator" / f"{name}.py").is_file():
            raise
        if str(root) not in sys.path:
            sys.path.insert(0, str(root))
        return importlib.import_module(f"generator.{name}")


def parse_name(name: str):
    """The typed configuration (generator/model.py) of a kernel name of any family."""
    return generator_module("model").parse_name(name)
