#!/usr/bin/env bash
# Builds the `minimal` wheel from two clones in different directories and
# checks that the two wheels are byte-identical (README, "The build").
set -euo pipefail
src="$(cd "$(dirname "$0")/.." && pwd)"
work=$(mktemp -d)
git clone -q "$src" "$work/a"
mkdir -p "$work/b/deeper"
git clone -q "$src" "$work/b/deeper/checkout"
for d in "$work/a" "$work/b/deeper/checkout"; do
  (cd "$d" && SOURCE_DATE_EPOCH=1700000000 W4A16_MANIFEST=minimal \
     python3 -m pip wheel --no-deps -w dist . >"$d/wheel.log" 2>&1) || { tail -n 40 "$d/wheel.log"; exit 1; }
done
sha256sum "$work"/a/dist/*.whl "$work"/b/deeper/checkout/dist/*.whl
a=$(sha256sum "$work"/a/dist/*.whl | cut -d' ' -f1)
b=$(sha256sum "$work"/b/deeper/checkout/dist/*.whl | cut -d' ' -f1)
if [ "$a" != "$b" ]; then
  echo "reproducibility: the two minimal wheels differ"
  exit 1
fi
echo "reproducibility: identical minimal wheels from two directories ($a)"
