"""The w4a16_build kernel generator: manifest -> validated plan -> CUDA sources.

Imports are relative so that the same folder works as the top-level
`generator` package of a source checkout and as `w4a16_build._generator`
inside an installed wheel.
"""

from .manifest import Manifest, ManifestError, load, parse
from .model import AXES, Cluster, DType, KernelConfig, QuantMode, Schedule, Tile, TileScheduler
from .pipeline import Plan, plan

__all__ = [
    "AXES", "Cluster", "DType", "KernelConfig", "Manifest", "ManifestError", "Plan",
    "QuantMode", "Schedule", "Tile", "TileScheduler", "load", "parse", "plan",
]
