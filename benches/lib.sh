# shellcheck shell=bash
# Shared by the benchmark scripts: apt installs and finding the kiln binary.
# Source it after setting REPO; the caller defines log() and die().

SUDO=""
[[ $(id -u) -eq 0 ]] || SUDO=sudo
APT_UPDATED=no

apt_update_once() {
    [[ $APT_UPDATED == yes ]] || $SUDO apt-get update -qq
    APT_UPDATED=yes
}

is_installed() {
    [[ $(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true) == "install ok installed" ]]
}

ensure_pkg() {
    is_installed "$1" && return
    apt_update_once
    log "installing $1"
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$1" >/dev/null
}

# KILN, else the release build in CARGO_TARGET_DIR (or target/), built if missing.
find_kiln() {
    if [[ -z ${KILN:-} ]]; then
        KILN=${CARGO_TARGET_DIR:-$REPO/target}/release/kiln
        [[ -x $KILN ]] || (cd "$REPO" && cargo build --release --locked)
    fi
    [[ -x $KILN ]] || die "no kiln binary at $KILN"
    KILN=$(realpath "$KILN")
}
