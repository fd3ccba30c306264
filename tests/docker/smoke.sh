#!/usr/bin/env bash
# End-to-end smoke test of the CPU image: build it, run it, classify a real photo through it,
# check the logs, then SIGTERM it with half-sent requests in flight and check that they all completed
# and that the container exited 0. Everything it creates (containers, images, temp files) is removed.
#
#   tests/docker/smoke.sh
#   env: BASE_IMAGE        base for both stages (default python:3.11-slim-bookworm)
#        FOVEA_BUILD_CA    PEM bundle pip must trust during the build (default: $PIP_CERT if set)
#        FOVEA_SMOKE_KEEP_IMAGE=1   keep the image (and its build cache) for another run
# Needs: docker (legacy builder is fine), curl, python3 with scikit-image (for the chelsea photo).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
base_image="${BASE_IMAGE:-python:3.11-slim-bookworm}"
build_ca="${FOVEA_BUILD_CA:-${PIP_CERT:-}}"
run_id="fovea-smoke-$$"
image="fovea:${run_id#fovea-}"
work="$(mktemp -d "${TMPDIR:-/tmp}/$run_id.XXXXXX")"
containers=()
images_before="$work/images.before"

log() { printf '[smoke %s] %s\n' "$(date +%T)" "$*"; }
fail() { printf '[smoke] FAIL: %s\n' "$*" >&2; exit 1; }

cleanup() {
    local rc=$?
    for c in "${containers[@]}"; do
        if [[ $rc -ne 0 ]]; then
            echo "---- logs of $c ----" >&2
            docker logs --tail 60 "$c" >&2 2>&1 || true
        fi
        docker rm -f "$c" >/dev/null 2>&1 || true
    done
    if [[ "${FOVEA_SMOKE_KEEP_IMAGE:-0}" != 1 && -f "$images_before" ]]; then
        # The image and the build stage's intermediate images: whatever this build added.
        docker image ls -aq --no-trunc | sort -u | comm -13 "$images_before" - \
            | xargs -r docker rmi -f >/dev/null 2>&1 || true
    fi
    rm -rf "$work"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Milliseconds since the epoch (date +%s%3N is GNU-only but so is this whole setup).
now_ms() { date +%s%3N; }

wait_ready() {  # port timeout_s: returns 1 unless /readyz answers 200 in time
    local port=$1 deadline=$(( $(date +%s) + $2 ))
    until curl -fsS -o /dev/null "http://127.0.0.1:$port/readyz" 2>/dev/null; do
        (( $(date +%s) < deadline )) || return 1
        sleep 0.05
    done
}

# ---- build -----------------------------------------------------------------------------------
ctx="$work/context"
mkdir -p "$ctx"
for path in Dockerfile .dockerignore pyproject.toml README.md serving export loadtest model_store; do
    [[ -e "$repo/$path" ]] || fail "missing $path in $repo"
    cp -a "$repo/$path" "$ctx/"
done
if [[ -n "$build_ca" ]]; then
    [[ -r "$build_ca" ]] || fail "FOVEA_BUILD_CA=$build_ca is not readable"
    cp "$build_ca" "$ctx/build-ca.pem"
    log "build stage trusts $build_ca (as build-ca.pem)"
fi
docker image ls -aq --no-trunc | sort -u >"$images_before"
log "building $image on $base_image (legacy builder, host network)"
t0=$(date +%s)
DOCKER_BUILDKIT=0 docker build --network host --build-arg "BASE_IMAGE=$base_image" \
    -t "$image" "$ctx" >"$work/build.log" 2>&1 || { tail -40 "$work/build.log" >&2; fail "docker build"; }
log "built in $(( $(date +%s) - t0 )) s; image size $(docker image ls "$image" --format '{{.Size}}')"

# ---- image contents --------------------------------------------------------------------------
inspect() { docker run --rm --network none --entrypoint "$1" "$image" "${@:2}"; }
[[ "$(inspect id -u)" == 10001 ]] || fail "image does not run as uid 10001"
inspect python3 -c 'import importlib.util as u, sys; sys.exit(any(u.find_spec(m) for m in ("torch", "torchvision", "pip")))' \
    || fail "torch, torchvision or pip found in the runtime image"
inspect sh -c '! command -v gcc && ! command -v cc && ! find / -xdev -name build-ca.pem 2>/dev/null | grep -q .' >/dev/null \
    || fail "compiler or build CA bundle found in the runtime image"
log "runtime image: uid 10001, no torch/torchvision/pip, no compiler, no build CA"

# ---- run and classify ------------------------------------------------------------------------
python3 - "$work/chelsea.jpg" <<'EOF'
import sys
from PIL import Image
from skimage import data
Image.fromarray(data.chelsea()).save(sys.argv[1], quality=95)
EOF

port="$(free_port)"
name="$run_id-main"
containers+=("$name")
t_start=$(now_ms)
docker run -d --name "$name" --network host \
    -e FOVEA_HOST=127.0.0.1 -e FOVEA_PORT="$port" -e FOVEA_GRACEFUL_SHUTDOWN_S=30 \
    "$image" >/dev/null
wait_ready "$port" 120 || fail "/readyz not 200 within 120 s"
log "container start-to-ready: $(( $(now_ms) - t_start )) ms (docker run -d to first /readyz 200)"

curl -fsS "http://127.0.0.1:$port/readyz" >"$work/readyz.json"
python3 -c 'import json, sys; m = json.load(open(sys.argv[1]))["models"]; print(f"[smoke] models: {m}"); sys.exit(not m or any(s != "ready" for s in m.values()))' \
    "$work/readyz.json" || fail "not every model in the baked store is ready"
curl -fsS -F "image=@$work/chelsea.jpg" "http://127.0.0.1:$port/v1/classify" >"$work/classify.json" \
    || fail "POST /v1/classify"
python3 - "$work/classify.json" <<'EOF'
import json
import sys

top = json.load(open(sys.argv[1]))["results"][0]["predictions"][0]
# ImageNet's domestic cats are classes 281-285 (tabby ... Egyptian cat).
assert 281 <= top["class_id"] <= 285, f"chelsea's top-1 is not a cat: {top}"
print(f"[smoke] chelsea top-1: {top['label']} (class {top['class_id']}, p={top['probability']:.3f})")
EOF

# Docker's own HEALTHCHECK must agree (first probe runs after --interval).
for _ in $(seq 60); do
    health="$(docker inspect -f '{{.State.Health.Status}}' "$name")"
    [[ "$health" == healthy ]] && break
    sleep 1
done
[[ "$health" == healthy ]] || fail "docker health status is '$health', not healthy"
log "docker health status: healthy"

# ---- graceful shutdown: SIGTERM with requests in flight -------------------------------------
# sigterm_drain.py holds 4 half-sent requests open, sends SIGTERM, checks that new connections are
# refused, then completes them and requires 200 + cat for each.
t_term=$(now_ms)
python3 "$repo/tests/docker/sigterm_drain.py" "$name" "$port" "$work/chelsea.jpg" 4 \
    || fail "graceful shutdown with requests in flight"
exit_code="$(timeout 60 docker wait "$name")" || fail "container did not exit within 60 s of SIGTERM"
log "SIGTERM -> container exit code $exit_code, $(( $(now_ms) - t_term )) ms after the drain began"
[[ "$exit_code" == 0 ]] || fail "container exit code $exit_code after SIGTERM, expected 0"

docker logs "$name" >"$work/container.log" 2>&1
grep -q "model mobilenet_v2 ready" "$work/container.log" || fail "no 'model ... ready' line in the logs"
grep -q "Waiting for connections to close" "$work/container.log" || fail "no drain line in the logs"
grep -q "Finished server process" "$work/container.log" || fail "no clean-exit line in the logs"
if grep -E "Traceback|CRITICAL| ERROR " "$work/container.log"; then fail "errors in the logs"; fi
log "logs: model loaded, drained, finished; no errors"

# ---- a mounted model store chosen by FOVEA_MODEL_STORE ---------------------------------------
# An empty tmpfs hides the baked-in /models, so whatever is served came from the mount. The mounted
# store must be readable by the image's uid 10001, as a user's ./my_models would have to be.
cp -a "$repo/model_store" "$work/my_models"
chmod -R u=rwX,go=rX "$work/my_models"
port="$(free_port)"
name="$run_id-mounted"
containers+=("$name")
docker run -d --name "$name" --network host --tmpfs /models \
    -v "$work/my_models:/srv/models:ro" \
    -e FOVEA_HOST=127.0.0.1 -e FOVEA_PORT="$port" -e FOVEA_MODEL_STORE=/srv/models \
    "$image" >/dev/null
wait_ready "$port" 120 || fail "mounted store: /readyz not 200 within 120 s"
curl -fsS -F "image=@$work/chelsea.jpg" "http://127.0.0.1:$port/v1/classify" >/dev/null \
    || fail "mounted store: POST /v1/classify"
docker stop -t 30 "$name" >/dev/null
[[ "$(docker inspect -f '{{.State.ExitCode}}' "$name")" == 0 ]] || fail "mounted store: exit code"
log "store mounted at /srv/models (baked /models hidden) via FOVEA_MODEL_STORE: ready, classified, docker stop -> exit 0"

log "PASS"
