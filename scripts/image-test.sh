#!/usr/bin/env bash
# The lab-server image, built and started for real with podman (CI's image job; tests/test_image.py runs it).
#
#   scripts/image-test.sh             install what is missing, build, start, check, clean up
#   scripts/image-test.sh --install   only install the Debian packages it needs (scripts/test.sh calls this)
#
# Steps: Debian's podman/buildah/runc/podman-compose (installed when missing); our own containers.conf
# (runc, cgroupfs: crun and systemd do not work here) passed by CONTAINERS_CONF, so no user's config is
# touched; the base image localhost/pybase:bookworm made from Debian's archive with debootstrap (no
# registry image can be pulled), kept and reused; docker/Dockerfile built on it (layers cached between
# runs); `mat-interp --help` in the image; the app container alone until /_stcore/health says ok; then
# docker-compose.yml with podman-compose, a local MariaDB image standing in for mysql:8.4
# (docker/compose.mariadb.yml), where the app's container queues a small study and the compose worker
# runs it to the end. Containers, networks and volumes are removed at the end, images kept (the cache).
# No container reaches anything but the others and its own loopback: --network none, or the compose
# project's internal network. Root only. Every wait is bounded and says what it waited for.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$(pwd -P)"

STATE="${MAT_INTERP_IMAGE_STATE:-/var/tmp/mat-interp-image}"   # our containers.conf
BASE_IMAGE=localhost/pybase:bookworm
IMAGE=localhost/mat-interp:latest
DB_IMAGE=localhost/mat-interp-mysql-standin:bookworm
# iptables: netavark sets up the build's bridge network with it (a machine without Docker may not have it:
# "netavark: No such file or directory" at the first RUN step)
PACKAGES=(podman buildah runc fuse-overlayfs slirp4netns uidmap catatonit debootstrap podman-compose
          netavark aardvark-dns iptables binutils)
RUN_ID="mitest$$"
T0=$SECONDS

log() { printf '[image-test %4ds] %s\n' "$((SECONDS - T0))" "$*" >&2; }
die() { log "FAILED: $*"; exit 1; }

install_packages() {
    local missing=() pkg
    for pkg in "${PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
    done
    [ "${#missing[@]}" -eq 0 ] && return 0
    [ "$(id -u)" -eq 0 ] || die "needs root to install ${missing[*]} and to run podman"
    log "installing Debian packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

write_containers_conf() {
    # crun fails here (setrlimit RLIMIT_NOFILE); there is no systemd. Without CAP_SYS_RESOURCE no
    # container may get a limit above conmon's (nofile: the hard limit here; nproc: 32768).
    local nofile nproc
    nofile="$(ulimit -Hn)"
    [ "$nofile" = unlimited ] && nofile=65536
    [ "$nofile" -gt 65536 ] && nofile=65536
    nproc="$(ulimit -Hu)"
    [ "$nproc" = unlimited ] && nproc=32768
    [ "$nproc" -gt 32768 ] && nproc=32768
    mkdir -p "$STATE"
    cat > "$STATE/containers.conf" <<EOF
# Written by scripts/image-test.sh; used only through CONTAINERS_CONF.
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
[network]
network_backend = "netavark"
EOF
    export CONTAINERS_CONF="$STATE/containers.conf"
}

debian_mirror() {
    # The mirror apt already uses for bookworm (DEBIAN_MIRROR overrides).
    if [ -n "${DEBIAN_MIRROR:-}" ]; then echo "$DEBIAN_MIRROR"; return; fi
    local uri
    uri="$(apt-get indextargets --format '$(REPO_URI) $(RELEASE)' 'Created-By: Packages' 2>/dev/null \
           | awk '$2 == "bookworm" && $1 !~ /security/ {print $1; exit}')"
    echo "${uri:-http://deb.debian.org/debian/}"
}

make_base_image() {
    if podman image exists "$BASE_IMAGE"; then
        log "base image $BASE_IMAGE exists (reused)"
        return
    fi
    local rootfs mirror
    rootfs="$(mktemp -d /var/tmp/pybase-rootfs.XXXXXX)"
    mirror="$(debian_mirror)"
    log "making $BASE_IMAGE with debootstrap from $mirror"
    if ! debootstrap --variant=minbase --include=python3,python3-venv,python3-pip,ca-certificates \
            bookworm "$rootfs" "$mirror" > "$STATE/debootstrap.log" 2>&1; then
        tail -20 "$STATE/debootstrap.log" >&2
        rm -rf "$rootfs"
        die "debootstrap of the base image failed (log: $STATE/debootstrap.log)"
    fi
    ln -sf python3 "$rootfs/usr/bin/python"
    rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/archives/*.deb
    tar -C "$rootfs" -c . | podman import -q --change 'CMD ["python3"]' - "$BASE_IMAGE" >/dev/null
    rm -rf "$rootfs"
    log "base image $BASE_IMAGE made"
}

build_images() {
    # The host's pip configuration and CA bundle, read-only, for the RUN steps (pip behind this
    # machine's TLS proxy); nothing of them stays in the image.
    local mounts=() f
    for f in /etc/pip.conf /etc/ssl/certs/ca-certificates.crt; do
        [ -f "$f" ] && mounts+=(-v "$f:$f:ro")
    done
    log "building $IMAGE from docker/Dockerfile"
    podman build --layers --build-arg PYTHON_IMAGE="$BASE_IMAGE" "${mounts[@]}" \
        -f docker/Dockerfile -t "$IMAGE" . > "$STATE/build.log" 2>&1 \
        || { tail -30 "$STATE/build.log" >&2; die "podman build of docker/Dockerfile failed (log: $STATE/build.log)"; }
    log "built $IMAGE: $(podman image inspect -f '{{.Size}}' "$IMAGE" | awk '{printf "%.2f GB", $1/1e9}')"
    log "building $DB_IMAGE (MariaDB standing in for mysql:8.4)"
    podman build --layers --build-arg BASE_IMAGE="$BASE_IMAGE" -t "$DB_IMAGE" docker/mysql-standin \
        > "$STATE/build-db.log" 2>&1 \
        || { tail -30 "$STATE/build-db.log" >&2; die "podman build of docker/mysql-standin failed (log: $STATE/build-db.log)"; }
}

# ------------------------------------------------------------------ checks
wait_for() {  # wait_for SECONDS WHAT COMMAND...: retry COMMAND every 2 s until it succeeds
    local limit=$1 what=$2 start=$SECONDS
    shift 2
    until "$@" >/dev/null 2>&1; do
        [ $((SECONDS - start)) -lt "$limit" ] || return 1
        sleep 2
    done
    log "$what after $((SECONDS - start)) s"
}

healthy() {  # the container's own health check (the compose file's) passes
    podman healthcheck run "$1"
}

app_healthy() {  # the Dockerfile's HEALTHCHECK command passes in container $1 (podman's default OCI
    # image format does not keep HEALTHCHECK, so it is taken from the Dockerfile)
    local cmd
    cmd="$(sed -n 's/^ *CMD \(\["python", "-c", .*_stcore\/health.*\]\)$/\1/p' docker/Dockerfile)"
    [ -n "$cmd" ] || die "no HEALTHCHECK CMD [\"python\", \"-c\", ...] on /_stcore/health in docker/Dockerfile"
    podman exec "$1" python -c "$(python3 -c 'import json, sys; print(json.loads(sys.argv[1])[2])' "$cmd")"
}

check_help() {
    local out
    out="$(podman run --rm --network none "$IMAGE" --help 2>&1)" || die "mat-interp --help failed in the image: $out"
    grep -q "usage: mat-interp" <<<"$out" || die "mat-interp --help printed no usage: $out"
    log "mat-interp --help runs in the image"
}

check_app_alone() {
    local name="${RUN_ID}-app"
    podman run -d --name "$name" --network none -e MAT_INTERP_DATABASE_URL=sqlite:////data/app.db "$IMAGE" >/dev/null
    if ! wait_for 180 "the app container answers /_stcore/health" app_healthy "$name"; then
        podman logs --tail 30 "$name" >&2 || true
        die "the app container gave no 'ok' on /_stcore/health within 180 s"
    fi
    podman rm -f -t 10 "$name" >/dev/null
}

COMPOSE_DIR=""
compose() {
    podman-compose --no-ansi -p "$RUN_ID" -f "$COMPOSE_DIR/docker-compose.yml" -f "$COMPOSE_DIR/compose.mariadb.yml" "$@"
}

resolves_db() {  # container $1 finds the compose file's db service by name (aardvark-dns may lag on a new network)
    podman exec "$1" python -c "import socket; socket.getaddrinfo('db', 3306)"
}

study_done() {  # exit 0 when the app container sees the study's trials all finished; a failing check dies
    local out rc=0
    out="$(podman exec "$1" python -c "
import os, sys
from mat_interp_core import projects
p = projects.progress(projects.open_project(os.environ['MAT_INTERP_DATABASE_URL'], 'citest'))
sys.exit(0 if p['done'] else 3)" 2>&1)" || rc=$?
    [ "$rc" -eq 3 ] && return 1
    [ "$rc" -eq 0 ] && return 0
    printf '%s\n' "$out" > "$STATE/study-check.log"  # wait_for hides our output: the caller reports it
    return 1
}

check_compose() {
    # A copy of the shipped compose file in a folder of its own: podman-compose reads a .env next
    # to it over the environment, and a lab server's own .env must not mix in.
    COMPOSE_DIR="$(mktemp -d "$STATE/compose.XXXXXX")"
    cp docker-compose.yml "$COMPOSE_DIR/docker-compose.yml"
    cp docker/compose.mariadb.yml "$COMPOSE_DIR/compose.mariadb.yml"
    local pw
    pw="$(od -An -tx1 -N12 /dev/urandom | tr -d ' \n')"
    export MYSQL_DATABASE=mat_interp MYSQL_USER=mat_interp MYSQL_PASSWORD="app-$pw" MYSQL_ROOT_PASSWORD="root-$pw"
    export APP_BIND=127.0.0.1 APP_PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    log "podman-compose up (project $RUN_ID)"
    compose up -d --no-build > "$STATE/compose-up.log" 2>&1 \
        || { tail -30 "$STATE/compose-up.log" >&2; die "podman-compose up failed (log: $STATE/compose-up.log)"; }
    local db="${RUN_ID}_db_1" app="${RUN_ID}_app_1" worker="${RUN_ID}_worker_1"
    wait_for 120 "MariaDB (for mysql:8.4) answers" healthy "$db" \
        || { podman logs --tail 30 "$db" >&2; die "the db service was not healthy (mysqladmin ping) within 120 s"; }
    wait_for 180 "the compose app answers /_stcore/health" app_healthy "$app" \
        || { podman logs --tail 30 "$app" >&2; die "the compose app gave no 'ok' on /_stcore/health within 180 s"; }
    wait_for 60 "the app container resolves the db service" resolves_db "$app" \
        || die "the app container could not resolve the db service's name within 60 s (aardvark-dns)"
    log "the app's container queues a study of 2 tiny trials"
    podman exec -i "$app" python - > "$STATE/queue.log" 2>&1 <<'EOF' \
        || { cat "$STATE/queue.log" >&2; die "the app container could not store the study"; }
import os
from mat_interp_core import dataset, projects, synthetic
from mat_interp_core.space import SearchSpace

data = dataset.validate(synthetic.demo_frame(), "T (K)", "H (Oe)", "moment (emu)")
space = SearchSpace(layers=(2, 2), nodes=(16, 24), solvers=("adam",), epochs=30, patience=30,
                    min_resource=10, keep_models=2, refine_epochs=0)
projects.create_project(os.environ["MAT_INTERP_DATABASE_URL"], "citest", data, space=space, n_trials=2)
EOF
    rm -f "$STATE/study-check.log"
    if ! wait_for 600 "the compose worker finished the study" study_done "$app"; then
        [ -s "$STATE/study-check.log" ] && die "the check of the study failed in the app container: $(tail -3 "$STATE/study-check.log")"
        podman logs --tail 40 "$worker" >&2 || true
        die "the compose worker did not finish the study's 2 trials within 600 s"
    fi
    # Every trial ran in the worker's container (its host name is the container's).
    local hosts worker_host
    worker_host="$(podman inspect -f '{{.Config.Hostname}}' "$worker")"
    hosts="$(podman exec "$app" python -c "
import os
from mat_interp_core import projects
study = projects.open_project(os.environ['MAT_INTERP_DATABASE_URL'], 'citest').study()
print(' '.join(sorted({t.user_attrs.get('worker', '?').split(':')[0] for t in study.trials})))")"
    [ "$hosts" = "$worker_host" ] || die "trials ran on '$hosts', not in the worker container ($worker_host)"
    podman exec "$app" mat-interp status citest | tail -4 >&2
    if podman logs "$worker" 2>&1 | grep -q Traceback; then
        podman logs --tail 40 "$worker" >&2
        die "the compose worker logged a traceback"
    fi
    log "the compose worker ran the app's study in its own container"
}

cleanup() {
    local status=$?
    trap - EXIT
    set +e
    podman rm -f -t 5 "${RUN_ID}-app" >/dev/null 2>&1
    if [ -n "$COMPOSE_DIR" ]; then
        compose down -v -t 10 > "$STATE/compose-down.log" 2>&1
        # whatever podman-compose left of this project (it labels all it creates)
        podman ps -aq --filter "label=io.podman.compose.project=$RUN_ID" | xargs -r podman rm -f -t 5 >/dev/null 2>&1
        podman network ls -q --filter "label=io.podman.compose.project=$RUN_ID" | xargs -r podman network rm -f >/dev/null 2>&1
        podman volume ls -q --filter "label=io.podman.compose.project=$RUN_ID" | xargs -r podman volume rm -f >/dev/null 2>&1
        rm -rf "$COMPOSE_DIR"
    fi
    log "cleaned up (images kept for the cache); exit $status"
    exit "$status"
}

main() {
    install_packages
    [ "${1:-}" = --install ] && return 0
    [ "$(id -u)" -eq 0 ] || die "needs root (podman with runc and cgroupfs as set up here)"
    write_containers_conf
    trap cleanup EXIT
    trap 'exit 143' TERM INT   # a stopped run cleans up too (once the running step returns)
    make_base_image
    build_images
    check_help
    check_app_alone
    check_compose
    log "image job passed in $((SECONDS - T0)) s; image size $(podman image inspect -f '{{.Size}}' "$IMAGE" | awk '{printf "%.2f GB", $1/1e9}')"
}

main "$@"
