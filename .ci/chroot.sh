#!/usr/bin/env bash
# A Debian chroot for CI, made with debootstrap from the mirror that this
# machine's own apt sources name, kept between runs (it is only a cache: a
# missing or half-made one is made again).
#
#   .ci/chroot.sh make ARCH SUITE NAME PACKAGES...   -> prints the chroot's path
#   .ci/chroot.sh run NAME COMMAND...                 runs COMMAND inside, as root,
#                                                     with /proc, /dev and /sys
#                                                     mounted and pip set up
#                                                     (and CHROOT_BIND=HOST:DIR,
#                                                     if set, mounted read-only)
#
# ARCH other than the host's (arm64 on x86-64) runs under qemu-user-static
# through binfmt_misc, which this script mounts and enables.  pip inside
# reaches the package index as the host's pip does: the host's CA bundle and
# resolver configuration are copied in.
set -euo pipefail
ROOT_DIR=${RELU_CI_CHROOTS:-/var/cache/relu-ufunc-ci}

need() {
    local missing=()
    for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
    if [ "${#missing[@]}" -gt 0 ]; then
        echo "+ apt-get install ${missing[*]}" >&2
        apt-get update -qq >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
    fi
}

mirror() {
    # The first Debian archive URI of the host's apt sources (deb822 or
    # one-line format); not written into the repository.
    local uri
    uri=$(grep -h -E '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null \
          | awk '{print $2}' | grep -v -- '-security' | head -n 1 || true)
    if [ -z "$uri" ]; then
        uri=$(grep -h -E '^deb ' /etc/apt/sources.list 2>/dev/null \
              | awk '{print $2}' | grep -v -- '-security' | head -n 1 || true)
    fi
    [ -n "$uri" ] || { echo "chroot.sh: no Debian mirror in the apt sources" >&2; exit 1; }
    echo "$uri"
}

binfmt_for() {
    local arch=$1
    [ "$arch" = "$(dpkg --print-architecture)" ] && return 0
    need qemu-user-static binfmt-support
    if [ ! -e /proc/sys/fs/binfmt_misc/status ]; then
        mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
    fi
    local q
    case "$arch" in arm64) q=qemu-aarch64 ;; *) q=qemu-$arch ;; esac
    update-binfmts --enable "$q" >/dev/null 2>&1 || true
    [ -e "/proc/sys/fs/binfmt_misc/$q" ] || {
        echo "chroot.sh: binfmt_misc has no $q entry: cannot run $arch programs" >&2; exit 1; }
}

mounts_up() {
    local dir=$1
    mountpoint -q "$dir/proc" || mount -t proc proc "$dir/proc"
    mountpoint -q "$dir/dev" || mount --bind /dev "$dir/dev"
    mountpoint -q "$dir/sys" || mount --bind /sys "$dir/sys"
}

mounts_down() {
    local dir=$1
    for m in sys dev proc; do
        mountpoint -q "$dir/$m" && umount -l "$dir/$m" || true
    done
}

setup_net() {
    local dir=$1
    cp -L /etc/resolv.conf "$dir/etc/resolv.conf" 2>/dev/null || true
    mkdir -p "$dir/etc/ssl/certs"
    cp -L /etc/ssl/certs/ca-certificates.crt "$dir/etc/ssl/certs/ca-certificates.crt"
    # Only the certificate: the host's constraints and local wheel folders
    # are for the host's Python.
    printf '[global]\ncert = /etc/ssl/certs/ca-certificates.crt\ndisable-pip-version-check = true\n' \
        > "$dir/etc/pip.conf"
}

cmd_make() {
    local arch=$1 suite=$2 name=$3
    shift 3
    local dir=$ROOT_DIR/$name
    local want="$arch $suite $*"
    if [ -f "$dir/.relu-ufunc-ready" ] && [ "$(cat "$dir/.relu-ufunc-ready")" = "$want" ]; then
        setup_net "$dir"
        echo "$dir"
        return
    fi
    need debootstrap
    binfmt_for "$arch"
    mounts_down "$dir" 2>/dev/null || true
    rm -rf "$dir"
    mkdir -p "$ROOT_DIR"
    local script=/usr/share/debootstrap/scripts/$suite
    [ -e "$script" ] || script=/usr/share/debootstrap/scripts/sid
    echo "+ debootstrap --arch=$arch $suite $dir ($(mirror))" >&2
    debootstrap --arch="$arch" --variant=minbase "$suite" "$dir" "$(mirror)" "$script" \
        > "$ROOT_DIR/$name.debootstrap.log" 2>&1 || {
        tail -n 30 "$ROOT_DIR/$name.debootstrap.log" >&2; exit 1; }
    setup_net "$dir"
    # The mirror may serve a snapshot whose Release file has expired.
    echo 'Acquire::Check-Valid-Until "false";' > "$dir/etc/apt/apt.conf.d/99relu-ufunc-ci"
    mounts_up "$dir"
    trap 'mounts_down "'"$dir"'"' EXIT
    echo "+ apt-get install $* (in $name)" >&2
    chroot "$dir" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
        DEBIAN_FRONTEND=noninteractive sh -c \
        "apt-get update -qq && apt-get install -y -qq --no-install-recommends $*" \
        > "$ROOT_DIR/$name.apt.log" 2>&1 || { tail -n 30 "$ROOT_DIR/$name.apt.log" >&2; exit 1; }
    mounts_down "$dir"
    trap - EXIT
    echo "$want" > "$dir/.relu-ufunc-ready"
    echo "$dir"
}

cmd_run() {
    local name=$1
    shift
    local dir=$ROOT_DIR/$name
    [ -f "$dir/.relu-ufunc-ready" ] || { echo "chroot.sh: no chroot $name; make it first" >&2; exit 1; }
    binfmt_for "$(cut -d' ' -f1 "$dir/.relu-ufunc-ready")"
    setup_net "$dir"
    mounts_up "$dir"
    # CHROOT_BIND=HOSTDIR:DIR shows HOSTDIR, read-only, at DIR inside.
    local bind=""
    if [ -n "${CHROOT_BIND:-}" ]; then
        bind=$dir${CHROOT_BIND#*:}
        mkdir -p "$bind"
        mountpoint -q "$bind" || mount --bind -o ro "${CHROOT_BIND%%:*}" "$bind"
    fi
    trap 'mounts_down "'"$dir"'"; [ -z "'"$bind"'" ] || umount -l "'"$bind"'"' EXIT
    chroot "$dir" /usr/bin/env -i PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        HOME=/root LANG=C.UTF-8 PYTHONUNBUFFERED=1 CI="${CI:-}" "$@"
}

case "${1:-}" in
    make) shift; cmd_make "$@" ;;
    run) shift; cmd_run "$@" ;;
    *) echo "usage: $0 make ARCH SUITE NAME PACKAGES... | run NAME COMMAND..." >&2; exit 2 ;;
esac
