#!/usr/bin/env bash
# Assemble the corpora benches/compare.sh runs on, idempotently, from pinned versions, in the
# bench cache (outside the repo):
#   python-docs   the Python 3.11 HTML docs from Debian's python3.11-doc, assembled by
#                 benches/build.sh's own functions ($CACHE/python-docs, shared with build.sh)
#   npm-site      dist files of real libraries (npm pack of pinned versions) laid out as a site:
#                 index.html + lib/<package>/...            ($CACHE/corpus/npm-site)
#   images        the PNG and JPEG files of pinned Debian packages (apt-get download +
#                 dpkg-deb -x, nothing installed)           ($CACHE/corpus/images)
#
# Usage: benches/corpus.sh [--quick] [--scale N]
#   --scale N   also make python-docs-xN: N copies of the doc site in subfolders copy-01..copy-N
#               (identical bytes in every copy), for compare.sh's memory-growth check
#   --quick     also make small subsets of the three corpora in $CACHE/corpus/quick/ (and the
#               --scale copy of the quick doc subset instead of the full one), to test quickly
# Env:   KILN_BENCH_CACHE  cache root (default: ~/.cache/kiln-bench)
# Needs: Debian/Ubuntu (apt), npm, python3. Installs python3.11-doc with apt (as build.sh does);
#        the image packages are only downloaded.
# Prints the assembled trees: files and bytes per kind (Markdown), and each tree's path.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${KILN_BENCH_CACHE:-$HOME/.cache/kiln-bench}
CORPUS=$CACHE/corpus
DOCS=$CACHE/python-docs

# npm packages, exact versions. three 0.170.0 is the last release whose build/three.module.js is
# one self-contained module; react-dom 18 is the last major with UMD builds.
NPM_PACKAGES=(
    react@18.3.1
    react-dom@18.3.1
    lodash-es@4.18.1
    bootstrap@5.3.9
    three@0.170.0
    d3@7.9.2
    jquery@4.0.0
)
# "package=glob ..." of the files taken from each tarball (paths under package/); no source maps.
NPM_FILES=(
    "react=umd/*.js"
    "react-dom=umd/*.js"
    "lodash-es=*.js"
    "bootstrap=dist/css/*.css dist/js/*.js"
    "three=build/three.module.js build/three.module.min.js"
    "d3=dist/*.js"
    "jquery=dist/*.js"
)
# Debian packages with images, exact versions (bookworm). mate-backgrounds has photos (JPEG, up
# to 16 MB) and large PNG wallpapers; desktop-base has PNG logos, icons, boot and grub images.
IMAGE_PACKAGES=(
    mate-backgrounds=1.26.0-1
    desktop-base=12.0.6+nmu1~deb12u1
)

log() { echo "corpus: $*" >&2; }
die() { log "error: $*"; exit 1; }

# benches/build.sh's ensure_doc_package and assemble_docs (sourcing it does not run it). It
# sets its own log/die and lib.sh's apt helpers; ours are put back after.
load_build_sh() {
    # shellcheck source=benches/build.sh
    source "$REPO/benches/build.sh"
    log() { echo "corpus: $*" >&2; }
    die() { log "error: $*"; exit 1; }
}

# stamp_ok DIR STAMP: DIR exists and was assembled from STAMP.
stamp_ok() { [[ -d $1 && -f $1.stamp && $(<"$1.stamp") == "$2" ]]; }

# ---------------------------------------------------------------- python docs

assemble_python_docs() {
    ensure_doc_package
    assemble_docs
}

# ---------------------------------------------------------------- npm site

npm_site_index() {
    cat <<'EOF'
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Library dist files</title>
<link rel="stylesheet" href="lib/bootstrap/dist/css/bootstrap.css">
<script src="lib/react/umd/react.production.min.js"></script>
<script src="lib/react-dom/umd/react-dom.production.min.js"></script>
<script src="lib/jquery/dist/jquery.js"></script>
<script src="lib/d3/dist/d3.js"></script>
<script src="lib/bootstrap/dist/js/bootstrap.bundle.js"></script>
<script type="module">
import * as THREE from "./lib/three/build/three.module.js";
import { debounce } from "./lib/lodash-es/lodash.js";
window.demo = { THREE, debounce };
</script>
</head>
<body>
<main class="container">
<h1>Library dist files</h1>
<p>Pinned npm releases, as a site would ship them.</p>
</main>
</body>
</html>
EOF
}

assemble_npm_site() {
    local tree=$CORPUS/npm-site tarballs=$CORPUS/npm-tarballs stamp spec name entry globs
    stamp="${NPM_PACKAGES[*]} | ${NPM_FILES[*]}"
    if stamp_ok "$tree" "$stamp"; then
        log "npm-site up to date"
        return
    fi
    command -v npm >/dev/null || die "npm is needed (apt-get install npm)"
    mkdir -p "$tarballs"
    rm -rf "$tree" "$tree.tmp"
    mkdir -p "$tree.tmp/lib"
    for spec in "${NPM_PACKAGES[@]}"; do
        name=${spec%@*}
        local tgz=$tarballs/${name//\//-}-${spec##*@}.tgz
        if [[ ! -s $tgz ]]; then
            log "npm pack $spec"
            local packed
            packed=$(cd "$tarballs" && npm pack "$spec" --silent --loglevel=error) ||
                die "npm pack $spec failed"
            [[ -s $tarballs/$packed ]] || die "npm pack $spec wrote no tarball"
            [[ $tarballs/$packed == "$tgz" ]] || mv "$tarballs/$packed" "$tgz"
        fi
        globs=""
        for entry in "${NPM_FILES[@]}"; do
            [[ ${entry%%=*} == "$name" ]] && globs=${entry#*=}
        done
        [[ -n $globs ]] || die "no NPM_FILES entry for $name"
        local x=$tree.tmp/x
        rm -rf "$x"
        mkdir -p "$x" "$tree.tmp/lib/$name"
        tar -xzf "$tgz" -C "$x"
        # Copy the globs, keeping their paths under package/.
        (
            cd "$x/package"
            shopt -s nullglob
            local files=() patterns g
            read -ra patterns <<<"$globs"
            for g in "${patterns[@]}"; do
                # shellcheck disable=SC2206 # the glob is meant to expand
                local hits=($g)
                ((${#hits[@]})) || die "$spec: nothing matches $g"
                files+=("${hits[@]}")
            done
            cp --parents -- "${files[@]}" "$tree.tmp/lib/$name/"
        )
        rm -rf "$x"
    done
    npm_site_index >"$tree.tmp/index.html"
    mv "$tree.tmp" "$tree"
    echo "$stamp" >"$tree.stamp"
}

# ---------------------------------------------------------------- images

assemble_images() {
    local tree=$CORPUS/images debs=$CORPUS/debs stamp spec name version deb
    stamp="${IMAGE_PACKAGES[*]} (layout: PACKAGE/PATH-UNDER-usr/share)"
    if stamp_ok "$tree" "$stamp"; then
        log "images up to date"
        return
    fi
    mkdir -p "$debs"
    rm -rf "$tree" "$tree.tmp"
    mkdir -p "$tree.tmp"
    for spec in "${IMAGE_PACKAGES[@]}"; do
        name=${spec%%=*}
        version=${spec#*=}
        # dpkg file names encode ':' in versions as %3a; none of ours has an epoch.
        deb=$debs/${name}_${version}_all.deb
        if [[ ! -s $deb ]]; then
            log "apt-get download $spec"
            # (As root, apt warns that the download is not sandboxed: harmless here.)
            if ! (cd "$debs" && apt-get download -q "$spec") >"$debs/download.log" 2>&1 ||
                [[ ! -s $deb ]]; then
                cat "$debs/download.log" >&2
                die "could not download $spec (run apt-get update; if that version is gone" \
                    "from the archive, update IMAGE_PACKAGES in $0)"
            fi
        fi
        local x=$tree.tmp/.x
        rm -rf "$x"
        dpkg-deb -x "$deb" "$x"
        # Regular files only (the packages also ship symlinks to the same images).
        mkdir -p "$tree.tmp/$name"
        (
            cd "$x/usr/share"
            find . -type f \( -iname '*.png' -o -iname '*.jpg' -o -iname '*.jpeg' \) -print0 |
                xargs -0 -r cp --parents -t "$tree.tmp/$name" --
        )
        rm -rf "$x"
    done
    mv "$tree.tmp" "$tree"
    echo "$stamp" >"$tree.stamp"
}

# ---------------------------------------------------------------- subsets and copies

# make_scaled SRC DEST N: N copies of SRC in DEST/copy-01..copy-N.
make_scaled() {
    local src=$1 dest=$2 n=$3 i stamp
    # The source's listing (paths, sizes, modification times) identifies it.
    stamp="$n copies of $src, listing $(cd "$src" && find . -type f -printf '%P %s %T@\n' | sort | md5sum | cut -c1-16)"
    if stamp_ok "$dest" "$stamp"; then
        log "$(basename "$dest") up to date"
        return
    fi
    log "copying $src $n times -> $dest"
    rm -rf "$dest" "$dest.tmp"
    mkdir -p "$dest.tmp"
    for ((i = 1; i <= n; i++)); do
        cp -r "$src" "$dest.tmp/$(printf 'copy-%02d' "$i")"
    done
    mv "$dest.tmp" "$dest"
    echo "$stamp" >"$dest.stamp"
}

# The quick subsets: a few dozen pages of the docs with all of _static and _images; three
# libraries; a dozen small images. Seconds to build, for testing the scripts.
assemble_quick() {
    local quick=$CORPUS/quick stamp
    stamp="quick-v1: $(<"$DOCS.stamp") | $(<"$CORPUS/npm-site.stamp") | $(<"$CORPUS/images.stamp")"
    if stamp_ok "$quick" "$stamp"; then
        log "quick subsets up to date"
        return
    fi
    log "making quick subsets in $quick"
    rm -rf "$quick" "$quick.tmp"
    mkdir -p "$quick.tmp/python-docs" "$quick.tmp/npm-site/lib" "$quick.tmp/images"
    (
        cd "$DOCS"
        {
            find _static _images -type f 2>/dev/null
            echo index.html
            find library -maxdepth 1 -name '*.html' | sort | sed -n 1,40p
        } | xargs -d '\n' cp --parents -t "$quick.tmp/python-docs" --
    )
    (
        cd "$CORPUS/npm-site"
        cp -r lib/react lib/react-dom lib/bootstrap "$quick.tmp/npm-site/lib/"
        cp index.html "$quick.tmp/npm-site/"
    )
    (
        cd "$CORPUS/images"
        {
            find . -type f -iname '*.png' -size -200k -printf '%s %P\n' | sort -n | tail -n 10
            find . -type f \( -iname '*.jpg' -o -iname '*.jpeg' \) -size -400k -printf '%s %P\n' | sort -n | tail -n 3
        } | cut -d' ' -f2- | xargs -d '\n' cp --parents -t "$quick.tmp/images" --
    )
    mv "$quick.tmp" "$quick"
    echo "$stamp" >"$quick.stamp"
}

# ---------------------------------------------------------------- report

# Markdown: files and bytes per kind (by extension) in each tree (paths relative to $CACHE).
describe() {
    python3 - "$CACHE" "$@" <<'EOF'
import os, sys
KINDS = {"html": "HTML", "htm": "HTML", "css": "CSS", "js": "JS", "mjs": "JS", "cjs": "JS",
         "png": "PNG", "jpg": "JPEG", "jpeg": "JPEG"}
ORDER = ["HTML", "CSS", "JS", "PNG", "JPEG", "other"]
cache = sys.argv[1]
print(f"Trees under {cache}; per kind: files / MiB.\n")
print("| tree | files | MiB | " + " | ".join(ORDER) + " |")
print("| --- | ---: | ---: | " + " | ".join("---:" for _ in ORDER) + " |")
for root in sys.argv[2:]:
    n, total, per = 0, 0, {k: [0, 0] for k in ORDER}
    for d, _, files in os.walk(root):
        for f in files:
            size = os.path.getsize(os.path.join(d, f))
            kind = KINDS.get(f.rsplit(".", 1)[-1].lower() if "." in f else "", "other")
            per[kind][0] += 1; per[kind][1] += size; n += 1; total += size
    cells = [f"{c} / {b / 1048576:.2f}" if c else "–" for c, b in (per[k] for k in ORDER)]
    print(f"| {os.path.relpath(root, cache)} | {n} | {total / 1048576:.1f} | " + " | ".join(cells) + " |")
EOF
}

main() {
    local quick=no scale=0
    while (($#)); do
        case $1 in
            --quick) quick=yes ;;
            --scale)
                [[ ${2:-} =~ ^[1-9][0-9]*$ ]] || die "--scale needs a positive integer"
                scale=$2
                shift ;;
            -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
            *) die "unknown argument: $1 (usage: $0 [--quick] [--scale N])" ;;
        esac
        shift
    done
    mkdir -p "$CORPUS"
    load_build_sh
    assemble_python_docs
    assemble_npm_site
    assemble_images
    local trees=("$DOCS" "$CORPUS/npm-site" "$CORPUS/images")
    if [[ $quick == yes ]]; then
        assemble_quick
        trees+=("$CORPUS/quick/python-docs" "$CORPUS/quick/npm-site" "$CORPUS/quick/images")
    fi
    if ((scale > 1)); then
        local base=$DOCS dest=$CORPUS/python-docs-x$scale
        if [[ $quick == yes ]]; then
            base=$CORPUS/quick/python-docs
            dest=$CORPUS/quick/python-docs-x$scale
        fi
        make_scaled "$base" "$dest" "$scale"
        trees+=("$dest")
    fi
    describe "${trees[@]}"
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
    main "$@"
fi
