"""The README shows only kernels that exist in the manifest it shows them with (issue 13)."""

import re

from generator.manifest import load, parse
from generator.paths import resolve_manifest
from generator.pipeline import plan

NAME = re.compile(r"\b(?:fp16|bf16)_int4_[a-z_]+?_(?:t\d+x\d+x\d+_c\d+x\d+_[a-z]+_[a-z]+|gemv_m\d+_r\d+_s\d+)\b")


def yaml_blocks(text):
    return re.findall(r"```yaml\n(.*?)```", text, flags=re.S)


def test_every_kernel_name_in_the_readme_exists(repo_root):
    text = (repo_root / "README.md").read_text()
    # A name inside a manifest example belongs to that manifest; every other one to `default`,
    # the manifest `pip install .` builds.
    examples = yaml_blocks(text)
    in_examples = set()
    for block in examples:
        names = set(NAME.findall(block))
        if names:
            example_plan = plan(parse(block, "README example"))
            missing = names - set(example_plan.names)
            assert not missing, f"the README's example manifest does not build {sorted(missing)}"
            in_examples |= names
    outside = set(NAME.findall(re.sub(r"```yaml\n.*?```", "", text, flags=re.S)))
    assert outside, "the README names no kernel outside its manifest examples (pattern out of date?)"
    default = set(plan(load(resolve_manifest("default"))).names)
    missing = outside - default
    assert not missing, f"kernel names in README.md that `default` does not build: {sorted(missing)}"


def test_readme_has_no_unfilled_placeholders(repo_root):
    text = (repo_root / "README.md").read_text()
    left = re.findall(r"\b(?:[A-Z0-9]+_)*(?:COST|PLACEHOLDER|TODO|TBD)(?:_[A-Z0-9]+)*\b", text)
    assert not left, f"README.md still has placeholders: {left}"
