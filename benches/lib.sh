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

# Parse `/usr/bin/time -v` output (file $1, $2 cores) into
# "WALL_S CPU_S MAXRSS_MIB EFFICIENCY", where CPU = user + sys and
# parallel efficiency = (user + sys) / (wall * cores).
parse_time_v() {
    awk -F': ' -v cores="$2" '
        /User time \(seconds\)/ { user = $2 }
        /System time \(seconds\)/ { sys = $2 }
        /Maximum resident set size/ { rss = $2 }
        /Elapsed \(wall clock\) time/ {
            n = split($NF, part, ":"); wall = 0
            for (i = 1; i <= n; i++) wall = wall * 60 + part[i]
        }
        END {
            efficiency = wall > 0 ? 100 * (user + sys) / (wall * cores) : 0
            printf "%.2f %.2f %.0f %.0f%%\n", wall, user + sys, rss / 1024, efficiency
        }' "$1"
}
