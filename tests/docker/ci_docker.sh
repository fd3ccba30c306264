#!/usr/bin/env bash
# CI entry point for the container tests: get a Docker engine and a base image, then run
# tests/docker/smoke.sh. Where no engine can be had it prints "SKIPPED: <reason>" and exits 0;
# a smoke failure fails the run.
#
# Engine: an already reachable daemon is used as is. Otherwise (root only) docker.io is installed
# with apt if missing and a private dockerd is started (no bridge, no iptables: everything runs
# on the host network), and stopped and wiped again on exit.
# Base image: $BASE_IMAGE, else python:3.11-slim-bookworm if present or pullable, else a local
# Debian bookworm base made by build_base.sh (debootstrap; tarball cached in ~/.cache/fovea).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
official_base=python:3.11-slim-bookworm
local_base=fovea-base:bookworm
ci_run=/run/fovea-ci-docker        # sockets, pid file, log: small
ci_data=/var/lib/fovea-ci-docker   # images and containers: on disk, not on a tmpfs /run
dockerd_pid=""

log() { printf '[ci-docker %s] %s\n' "$(date +%T)" "$*"; }
skip() { echo "SKIPPED: $*"; exit 0; }

stop_daemon() {  # never changes the exit status: the test result (or SKIPPED) stands
    [[ -n "$dockerd_pid" ]] || return 0
    log "stopping the dockerd this script started (pid $dockerd_pid)"
    kill -TERM "$dockerd_pid" 2>/dev/null || true
    for _ in $(seq 30); do kill -0 "$dockerd_pid" 2>/dev/null || break; sleep 1; done
    kill -KILL "$dockerd_pid" 2>/dev/null || true
    cp "$ci_run/dockerd.log" /tmp/fovea-ci-dockerd.log 2>/dev/null || true
    # dockerd leaves mounts behind (its netns/default, overlays if it was killed): unmount first.
    awk -v a="$ci_run" -v b="$ci_data" 'index($2, a) == 1 || index($2, b) == 1 { print $2 }' \
        /proc/self/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
    rm -rf "$ci_run" "$ci_data" || log "warning: could not remove $ci_run or $ci_data"
}
trap stop_daemon EXIT

start_daemon() {
    [[ "$(uname -s)" == Linux ]] || skip "not Linux"
    [[ $EUID -eq 0 ]] || skip "no reachable Docker daemon and not root, so cannot start one"
    if ! command -v dockerd >/dev/null; then
        log "installing docker.io with apt"
        { flock /tmp/apt.lock apt-get update -q \
            && DEBIAN_FRONTEND=noninteractive flock /tmp/apt.lock \
               apt-get install -y -q --no-install-recommends docker.io; } >/tmp/fovea-ci-apt.log 2>&1 \
            || skip "could not install docker.io with apt (see /tmp/fovea-ci-apt.log)"
    fi
    mkdir -p "$ci_run" "$ci_data"
    export DOCKER_HOST="unix://$ci_run/docker.sock"
    dockerd --host "$DOCKER_HOST" --data-root "$ci_data" --exec-root "$ci_run/exec" \
        --pidfile "$ci_run/dockerd.pid" --bridge=none --iptables=false --ip6tables=false \
        >"$ci_run/dockerd.log" 2>&1 &
    dockerd_pid=$!
    for _ in $(seq 60); do
        docker info >/dev/null 2>&1 && return 0
        kill -0 "$dockerd_pid" 2>/dev/null || break
        sleep 1
    done
    local reason
    reason="$(grep -m1 -iE 'level=(error|fatal)' "$ci_run/dockerd.log" || echo 'no answer in 60 s')"
    skip "dockerd did not start: $reason"
}

pick_base() {
    if [[ -n "${BASE_IMAGE:-}" ]]; then
        docker image inspect "$BASE_IMAGE" >/dev/null 2>&1 || skip "BASE_IMAGE=$BASE_IMAGE not present"
        return
    fi
    if docker image inspect "$official_base" >/dev/null 2>&1 \
        || timeout 60 docker pull -q "$official_base" >/dev/null 2>&1; then
        export BASE_IMAGE="$official_base"
        return
    fi
    log "$official_base cannot be pulled; using the local $local_base (build_base.sh)"
    if ! command -v debootstrap >/dev/null; then
        [[ $EUID -eq 0 ]] || skip "no base image and no debootstrap"
        flock /tmp/apt.lock apt-get install -y -q debootstrap >/tmp/fovea-ci-apt.log 2>&1 \
            || skip "could not install debootstrap (see /tmp/fovea-ci-apt.log)"
    fi
    nice -n 10 "$here/build_base.sh" "$local_base" || skip "could not build a local base image"
    export BASE_IMAGE="$local_base"
}

t0=$(date +%s)
command -v curl >/dev/null || skip "curl not installed"
python3 -c 'import skimage, PIL' 2>/dev/null || skip "python3 lacks scikit-image/Pillow (the test photo)"
if docker info >/dev/null 2>&1; then
    log "using the running Docker daemon"
else
    start_daemon
    log "started a private dockerd (pid $dockerd_pid) at $DOCKER_HOST"
fi
pick_base
log "base image: $BASE_IMAGE"
"$here/smoke.sh"
log "container tests passed in $(( $(date +%s) - t0 )) s"
