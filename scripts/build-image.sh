#!/usr/bin/env bash
# Builds the leazzard OCI image without Docker: a static binary built here with cargo, packed
# FROM scratch by buildah (vfs storage, chroot isolation: no daemon, no registry), then
# smoke-tested from the image's own file system.
#
#   scripts/build-image.sh            # image localhost/leazzard:latest is kept
#   KEEP_IMAGE=0 scripts/build-image.sh   # remove it at the end
#   IMAGE=leazzard:dev scripts/build-image.sh
#
# Export afterwards, e.g.: buildah --storage-driver vfs push leazzard:latest docker-archive:leazzard.tar
# (then `docker load -i leazzard.tar` on the Docker host).
set -euo pipefail

IMAGE=${IMAGE:-localhost/leazzard:latest}
KEEP_IMAGE=${KEEP_IMAGE:-1}
BUILDAH=(buildah --storage-driver vfs)
ROOT=$(cd "$(dirname "$0")/.." && pwd)

log() { printf '\n== %s\n' "$*"; }
die() { printf 'build-image: %s\n' "$*" >&2; exit 1; }

work=$(mktemp -d /tmp/leazzard-image.XXXXXX)
ctr='' mnt='' demo_pid=''
cleanup() {
    local rc=$?
    if [ -n "$demo_pid" ] && kill -0 "$demo_pid" 2>/dev/null; then
        kill -KILL "$demo_pid" 2>/dev/null || true
    fi
    if [ -n "$ctr" ]; then
        [ -n "$mnt" ] && "${BUILDAH[@]}" umount "$ctr" >/dev/null 2>&1 || true
        "${BUILDAH[@]}" rm "$ctr" >/dev/null 2>&1 || true
    fi
    if [ "$KEEP_IMAGE" = 0 ]; then
        "${BUILDAH[@]}" rmi "$IMAGE" >/dev/null 2>&1 || true
    fi
    rm -rf "$work"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- tools ------------------------------------------------------------------------------------
command -v cargo >/dev/null || die "cargo not found (install Rust: https://rustup.rs)"
missing=()
command -v buildah >/dev/null || missing+=(buildah)
command -v dig >/dev/null || missing+=(dnsutils)
chroot_bin=$(PATH="$PATH:/usr/sbin:/sbin" command -v chroot) || die "chroot not found (coreutils)"
if [ ${#missing[@]} -gt 0 ]; then
    command -v apt-get >/dev/null || die "missing: ${missing[*]} (install them)"
    log "installing ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y --no-install-recommends "${missing[@]}"
fi

case "$(uname -m)" in
    x86_64) triple=x86_64-unknown-linux-gnu ;;
    aarch64 | arm64) triple=aarch64-unknown-linux-gnu ;;
    *) die "unsupported architecture $(uname -m)" ;;
esac

# ---- 1. static binary ---------------------------------------------------------------------------
log "cargo build (static, $triple)"
(cd "$ROOT" && RUSTFLAGS='-C target-feature=+crt-static' \
    timeout 1800 cargo build --release --locked --target "$triple")
bin="$ROOT/target/$triple/release/leazzard"
if ldd "$bin" 2>/dev/null | grep -q '=>'; then
    die "$bin is dynamically linked"
fi
bin_size=$(stat -c %s "$bin")
echo "binary: $bin ($bin_size bytes, $(file -b "$bin" 2>/dev/null | cut -d, -f1-2 || echo static))"

# ---- 2. image ---------------------------------------------------------------------------------
# Same final stage as the Dockerfile, with the binary prebuilt (keep the two in step).
log "buildah build $IMAGE"
mkdir -p "$work/ctx/rootfs/var/lib/leazzard"
cp "$bin" "$work/ctx/rootfs/leazzard"
cat >"$work/ctx/Containerfile" <<'EOF'
FROM scratch
COPY rootfs/ /
ENV DATA_DIR=/var/lib/leazzard
VOLUME ["/var/lib/leazzard"]
EXPOSE 53/udp 53/tcp 67/udp 9153/tcp
LABEL org.opencontainers.image.title="leazzard" \
      org.opencontainers.image.description="DNS (authoritative + forwarder), DHCP and ARP watcher for a Proxmox VE lab" \
      org.opencontainers.image.licenses="MIT"
ENTRYPOINT ["/leazzard"]
CMD ["run"]
EOF
timeout 600 "${BUILDAH[@]}" build --isolation chroot --layers=false \
    -f "$work/ctx/Containerfile" -t "$IMAGE" "$work/ctx"

# ---- 3. run the binary the image holds ----------------------------------------------------------
log "mount the image"
ctr=$(timeout 60 "${BUILDAH[@]}" from "$IMAGE")
mnt=$(timeout 60 "${BUILDAH[@]}" mount "$ctr")
echo "container $ctr mounted at $mnt"
ls -la "$mnt" "$mnt/var/lib"
cmp -s "$bin" "$mnt/leazzard" || die "the image's /leazzard differs from $bin"

log "leazzard --version"
timeout 10 "$mnt/leazzard" --version
log "leazzard --help (first lines)"
timeout 10 "$mnt/leazzard" --help >"$work/help.txt"
head -n 12 "$work/help.txt"
echo "... ($(wc -l <"$work/help.txt") lines)"

# The demo runs chrooted into the image: it proves the binary needs nothing the image lacks
# (no libc, no CA bundle, no /etc/resolv.conf). Same network namespace, so dig reaches it.
log "leazzard demo (chroot into the image, 5 s)"
env -i PATH=/ DNS_LISTEN=127.0.0.1:0 HTTP_LISTEN= DATA_DIR=/var/lib/leazzard LOG_LEVEL=INFO \
    "$chroot_bin" "$mnt" /leazzard demo >"$work/demo.log" 2>&1 &
demo_pid=$!
port=''
for _ in $(seq 1 50); do # up to 10 s for the banner
    port=$(sed -n 's/^leazzard demo: DNS on 127\.0\.0\.1:\([0-9]*\),.*/\1/p' "$work/demo.log" | head -n 1)
    [ -n "$port" ] && break
    kill -0 "$demo_pid" 2>/dev/null || break
    sleep 0.2
done
if [ -z "$port" ]; then
    cat "$work/demo.log"
    die "the demo did not report its DNS port within 10 s"
fi
sleep 5
answer=$(timeout 10 dig @127.0.0.1 -p "$port" web1.lab A +short +time=2 +tries=2 || true)
reverse=$(timeout 10 dig @127.0.0.1 -p "$port" -x "${answer:-198.18.0.20}" +short +time=2 +tries=2 || true)
echo "dig @127.0.0.1 -p $port web1.lab A         -> ${answer:-<none>}"
echo "dig @127.0.0.1 -p $port -x ${answer:-?} -> ${reverse:-<none>}"
kill -TERM "$demo_pid"
stopped=''
for _ in $(seq 1 50); do # up to 10 s for a clean stop
    if ! kill -0 "$demo_pid" 2>/dev/null; then stopped=1; break; fi
    sleep 0.2
done
demo_rc=0
if [ -n "$stopped" ]; then
    wait "$demo_pid" || demo_rc=$?
else
    kill -KILL "$demo_pid" 2>/dev/null || true
    wait "$demo_pid" 2>/dev/null || true
    demo_rc=timeout
fi
demo_pid=''
echo "demo stopped by SIGTERM, exit status $demo_rc"
grep -E '^leazzard demo:|WARN|ERROR' "$work/demo.log" | head -n 5 || true
if ! printf '%s\n' "$answer" | grep -Eq '^[0-9]+(\.[0-9]+){3}$'; then
    cat "$work/demo.log"
    die "web1.lab did not resolve through the demo"
fi
[ "$demo_rc" = 0 ] || die "the demo did not stop cleanly on SIGTERM ($demo_rc)"

# ---- 4. report --------------------------------------------------------------------------------
log "summary"
"${BUILDAH[@]}" images --format '{{.Name}}:{{.Tag}}  {{.ID}}  {{.Size}}' "$IMAGE"
"${BUILDAH[@]}" inspect --type image --format \
    'entrypoint={{.OCIv1.Config.Entrypoint}} cmd={{.OCIv1.Config.Cmd}} env={{.OCIv1.Config.Env}} volumes={{.OCIv1.Config.Volumes}} ports={{.OCIv1.Config.ExposedPorts}}' \
    "$IMAGE"
echo
echo "binary size: $bin_size bytes"
echo "demo check: web1.lab -> $answer (ok)"
if [ "$KEEP_IMAGE" = 0 ]; then
    echo "image $IMAGE will be removed (KEEP_IMAGE=0)"
else
    echo "image $IMAGE kept in vfs storage (KEEP_IMAGE=0 removes it)"
fi
