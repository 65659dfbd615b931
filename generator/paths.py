"""Where templates and manifests live.

In a source checkout they are the repository's top-level `templates/` and
`manifests/`, beside this `generator/` folder. In an installed wheel the
generator is `w4a16_build/_generator/` and they are `w4a16_build/_data/...`.
"""

from __future__ import annotations

from pathlib import Path

_HERE = Path(__file__).resolve().parent

# The manifest a build uses when none is named (W4A16_MANIFEST unset or empty): set here only;
# pyproject.toml and CMakeLists.txt pass an empty value through.
DEFAULT_MANIFEST = "default"


def _find(name: str) -> Path:
    for cand in (_HERE.parent / "_data" / name, _HERE.parent / name):
        if cand.is_dir():
            return cand
    raise FileNotFoundError(f"w4a16_build: cannot find the {name}/ folder next to {_HERE}")


def templates_dir() -> Path:
    return _find("templates")


def manifests_dir() -> Path:
    return _find("manifests")


def manifest_names() -> list[str]:
    return sorted(p.stem for p in manifests_dir().glob("*.yaml"))


def resolve_manifest(spec: str) -> Path:
    """A manifest name (`default`, `full`, ...) or a path to a YAML file."""
    if spec.endswith((".yaml", ".yml")) or "/" in spec or "\\" in spec:
        return Path(spec)
    path = manifests_dir() / f"{spec}.yaml"
    if not path.is_file():
        from .manifest import ManifestError

        raise ManifestError(
            f"{spec}: no such manifest; built-in manifests: {', '.join(manifest_names())}, "
            "or give a path to a .yaml file")
    return path


def display_path(path: str | Path) -> str:
    """A manifest path as recorded in build outputs: relative to the source
    tree (or package) when it is inside it, so that builds from two checkouts
    record the same text."""
    p = Path(path).resolve()
    for base in (_HERE.parent / "_data", _HERE.parent):
        try:
            return p.relative_to(base).as_posix()
        except ValueError:
            continue
    return str(path)
