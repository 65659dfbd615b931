"""python/w4a16_build/bench.py on the CPU: how the results file is written."""

import json

import pytest

pytest.importorskip("torch", reason="PyTorch is not installed")
from w4a16_build import bench  # noqa: E402


def test_the_json_is_replaced_whole_or_not_at_all(tmp_path):
    """The file a sweep rewrites after every layer is never left half written: the document goes
    to a .part file first and replaces the old one by a rename; a document that cannot be written
    leaves the last whole one in place and no .part file."""
    out = tmp_path / "b.json"
    bench._write(str(out), {"rows": [1], "complete": False})
    bench._write(str(out), {"rows": [1, 2], "complete": True})
    assert json.loads(out.read_text()) == {"rows": [1, 2], "complete": True}
    assert [p.name for p in tmp_path.iterdir()] == ["b.json"]
    with pytest.raises(TypeError):
        bench._write(str(out), {"rows": [object()]})
    assert json.loads(out.read_text()) == {"rows": [1, 2], "complete": True}
    assert [p.name for p in tmp_path.iterdir()] == ["b.json"]          # no half-written .part left
