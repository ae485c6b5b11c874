#!/bin/sh
# Build docker/Dockerfile where no Docker engine runs (this project's development machines) and
# smoke-test the image: a Debian bookworm root from debootstrap (python3.11 + venv) stands in
# for python:3.11-slim-bookworm, which can't be pulled here; buildah builds the Dockerfile on it
# unchanged (vfs storage, chroot isolation: no daemon, no overlay, no user namespaces needed);
# docker/smoke-test.sh then runs inside the image. Needs root and: apt-get install buildah
# debootstrap. Usage: docker/build-without-engine.sh [TAG]   (default localhost/gpu-operator:dev)
set -eu
TAG=${1:-localhost/gpu-operator:dev}
WORK=${WORK:-/tmp/gpu-operator-image}
B="buildah --storage-driver vfs"
BASE=localhost/python:3.11-slim-bookworm
here=$(cd "$(dirname "$0")/.." && pwd)

if ! $B images --quiet "$BASE" >/dev/null 2>&1 || [ -z "$($B images --quiet "$BASE")" ]; then
  mkdir -p "$WORK"
  [ -x "$WORK/rootfs/usr/bin/python3" ] || debootstrap --variant=minbase \
    --include=python3,python3-venv,python-is-python3,ca-certificates \
    bookworm "$WORK/rootfs" http://deb.debian.org/debian
  # Trust what this machine trusts (a TLS-inspecting egress proxy's CA, where there is one),
  # so pip and apt inside the build reach their registries as the host does.
  cp /etc/ssl/certs/ca-certificates.crt "$WORK/rootfs/etc/ssl/certs/ca-certificates.crt"
  ctr=$($B from scratch)
  cp -a "$WORK/rootfs/." "$($B mount "$ctr")/"
  $B config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --cmd python3 "$ctr"
  $B commit "$ctr" "$BASE"
  $B rm "$ctr"
fi

$B bud --isolation chroot --network host --build-arg PYTHON_IMAGE="$BASE" \
  -f "$here/docker/Dockerfile" -t "$TAG" "$here"
ctr=$($B from "$TAG")
trap '$B rm "$ctr" >/dev/null' EXIT
$B run --isolation chroot --network host -v "$here/docker/smoke-test.sh:/smoke-test.sh:ro" \
  "$ctr" -- sh /smoke-test.sh
