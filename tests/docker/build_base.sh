#!/usr/bin/env bash
# Build a minimal Debian bookworm + python3.11 base image without any registry, for hosts that
# cannot pull python:3.11-slim-bookworm: debootstrap a rootfs, then `docker import` it.
# The rootfs tarball is cached, so later runs only import it (seconds).
#
#   tests/docker/build_base.sh [TAG]            (default tag: fovea-base:bookworm)
#   env: FOVEA_DEBIAN_MIRROR (default http://deb.debian.org/debian), FOVEA_CACHE (~/.cache/fovea)
set -euo pipefail

tag="${1:-fovea-base:bookworm}"
mirror="${FOVEA_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
cache="${FOVEA_CACHE:-$HOME/.cache/fovea}"
tarball="$cache/debian-bookworm-python3.11-rootfs.tar.gz"

if docker image inspect "$tag" >/dev/null 2>&1; then
    echo "base image $tag already present"
    exit 0
fi

if [[ ! -s "$tarball" ]]; then
    command -v debootstrap >/dev/null || { echo "debootstrap not installed" >&2; exit 1; }
    mkdir -p "$cache"
    rootfs="$(mktemp -d "$cache/rootfs.XXXXXX")"
    trap 'rm -rf "$rootfs" "$tarball.partial"' EXIT
    echo "debootstrap bookworm from $mirror (a few minutes) ..."
    debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
        bookworm "$rootfs" "$mirror" >"$cache/debootstrap.log" 2>&1 \
        || { tail -20 "$cache/debootstrap.log" >&2; exit 1; }
    # Slim the rootfs the way the official slim images do: no apt lists, caches or docs.
    # Message catalogues (33 MB) go too; C.UTF-8 lives in /usr/lib/locale and stays.
    find "$rootfs/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
    rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin \
        "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/cache/debconf/*-old \
        "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* \
        "$rootfs"/var/log/*.log
    tar --numeric-owner -C "$rootfs" -czf "$tarball.partial" .
    mv "$tarball.partial" "$tarball"
fi

echo "importing $tarball as $tag"
docker import \
    --change 'ENV LANG=C.UTF-8' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["python3"]' \
    "$tarball" "$tag" >/dev/null
docker image ls "$tag"
