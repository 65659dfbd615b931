"""End to end on a real model (all-MiniLM-L6-v2), when its fp16 folder is at hand.

Prepare it with examples/prepare_minilm.py and point W4A16_MINILM at the folder.
"""

import os
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.gpu

MODEL = os.environ.get("W4A16_MINILM", "")


@pytest.mark.skipif(not MODEL or not Path(MODEL).is_dir(),
                    reason="W4A16_MINILM does not name a prepared model folder (examples/prepare_minilm.py)")
def test_minilm_end_to_end(tmp_path, repo_root):
    pytest.importorskip("sentence_transformers", reason="sentence-transformers is not installed")
    sys.path.insert(0, str(repo_root / "examples"))
    import json

    import minilm_w4a16

    out = tmp_path / "minilm.json"
    assert minilm_w4a16.main([MODEL, "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    for mode in ("groupwise_zero", "groupwise"):
        assert res[mode]["kernel_calls"] >= res[mode]["replaced_layers"] > 30
        assert res[mode]["ours_vs_fake_quant_cosine_min"] > 0.999
