#!/usr/bin/env bash
# Images: kiln against the single-purpose tools on the same files, in one run.
#   PNG   kiln (oxipng library, preset 2)  vs  the oxipng command at -o 2 (same version as
#         kiln's library, built once with cargo install into the bench cache), --strip safe
#   JPEG  kiln (mozjpeg, lossless)  vs  jpegtran -copy none -optimize -progressive
#         (libjpeg-turbo)  and  jpegoptim --strip-all (Debian packages)
# The files are the PNG and JPEG images of pinned Debian packages (benches/corpus.sh: wallpapers,
# several over 1 MB, and icons). Every tool gets its own fresh copy and uses both cores (kiln
# and oxipng thread internally; jpegtran and jpegoptim run under xargs -P).
#
# Variants (a second table): kiln with images.variants = ["webp"] (lossless WebP from PNG,
# score-guarded lossy WebP from JPEG) against cwebp (Debian's webp package) run per file as a
# build script would: -lossless for PNG, -q 85 -sharp_yuv for JPEG, no guard. The bytes are
# what a WebP-capable browser downloads: per image, the smaller of the image and its WebP.
# With KILN_BENCH_AVIF=1 kiln also makes AVIF variants (slow: no assembly in its encoder).
#
# Usage: benches/images.sh
# Env:   KILN  kiln binary (default: ${CARGO_TARGET_DIR:-target}/release/kiln)
#        KILN_BENCH_CACHE  bench cache (default: ~/.cache/kiln-bench)
#        KILN_BENCH_AVIF  1 to add AVIF to kiln's variants
# Sizes count, per file, the smaller of the tool's output and the original (jpegoptim writes
# nothing when it cannot gain; kiln never enlarges a file).
# Prints a Markdown table (also written to $CACHE/results/images.md): files, bytes before and
# after, saved, wall time, CPU time, parallel efficiency CPU / (wall × cores), time ratio to kiln.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${KILN_BENCH_CACHE:-$HOME/.cache/kiln-bench}
RESULTS=$CACHE/results
TOOLS=$CACHE/tools
OXIPNG_VERSION=10.2.1 # the version kiln's Cargo.lock pins for the library
CORES=$(nproc)

log() { echo "bench: $*" >&2; }
die() { log "error: $*"; exit 1; }
# shellcheck source=benches/lib.sh
source "$REPO/benches/lib.sh"

tools() {
    command -v jpegtran >/dev/null || ensure_pkg libjpeg-turbo-progs
    command -v jpegoptim >/dev/null || ensure_pkg jpegoptim
    command -v cwebp >/dev/null || ensure_pkg webp
    if [[ ! -x $TOOLS/bin/oxipng ]] || [[ $("$TOOLS/bin/oxipng" --version) != *"$OXIPNG_VERSION"* ]]; then
        log "building the oxipng command $OXIPNG_VERSION (once) into $TOOLS"
        CARGO_TARGET_DIR=$CACHE/tools-target cargo install --quiet --locked --root "$TOOLS" \
            "oxipng@$OXIPNG_VERSION" >&2
    fi
}

# run NAME CMD...: run CMD under /usr/bin/time; sets WALL and CPU (seconds).
run() {
    local name=$1
    shift
    local t
    t=$(mktemp)
    /usr/bin/time -f '%e %U %S' -o "$t" "$@" >/dev/null 2>&1 || die "$name failed"
    read -r WALL user sys <"$t"
    CPU=$(python3 -c "print(round($user + $sys, 2))")
    rm -f "$t"
}

# keep_smaller IN OUT: where a tool wrote nothing or something larger, the original counts
# (what a careful pipeline would ship; kiln does this itself).
keep_smaller() {
    local f name
    for f in "$1"/*; do
        name=$(basename "$f")
        if [[ ! -f $2/$name ]] || (($(stat -c %s "$2/$name") > $(stat -c %s "$f"))); then
            cp "$f" "$2/$name"
        fi
    done
}

# bytes DIR EXT...: total size of the files with these extensions under DIR.
bytes() {
    local dir=$1
    shift
    local args=()
    for ext in "$@"; do args+=(-o -iname "*.$ext"); done
    find "$dir" -type f \( "${args[@]:1}" \) -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }'
}

row() { # tool kind files before after wall cpu kiln_wall
    python3 - "$@" <<'EOF'
import sys
tool, kind, files, before, after, wall, cpu, kiln_wall, cores = sys.argv[1:10]
before, after, wall, cpu, kiln_wall, cores = int(before), int(after), float(wall), float(cpu), float(kiln_wall), int(cores)
saved = 100 * (1 - after / before) if before else 0
eff = 100 * cpu / (wall * cores) if wall else 0
ratio = "1.00×" if tool.startswith("kiln") else f"{wall / kiln_wall:.2f}×"
print(f"| {kind} | {tool} | {files} | {before/1e6:.2f} MB | {after/1e6:.2f} MB | {saved:.1f}% | {wall:.2f} s | {cpu:.2f} s | {eff:.0f}% | {ratio} |")
EOF
}

main() {
    mkdir -p "$RESULTS"
    find_kiln
    local images=$CACHE/corpus/images
    [[ -d $images ]] || bash "$REPO/benches/corpus.sh" >&2
    [[ -d $images ]] || die "no image corpus at $images"
    tools
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    mkdir -p "$work/png" "$work/jpeg"
    # Flat, unique names that keep their extension: package/dir/name.png -> package_dir_name.png.
    python3 - "$images" "$work" <<'EOF'
import os, shutil, sys
root, work = sys.argv[1:3]
for dirpath, _, names in os.walk(root):
    for name in names:
        ext = name.rsplit(".", 1)[-1].lower()
        kind = {"png": "png", "jpg": "jpeg", "jpeg": "jpeg"}.get(ext)
        if kind:
            rel = os.path.relpath(os.path.join(dirpath, name), root).replace(os.sep, "_")
            shutil.copyfile(os.path.join(dirpath, name), os.path.join(work, kind, rel))
EOF
    local npng njpeg png_in jpeg_in
    npng=$(find "$work/png" -type f | wc -l)
    njpeg=$(find "$work/jpeg" -type f | wc -l)
    png_in=$(bytes "$work/png" png)
    jpeg_in=$(bytes "$work/jpeg" jpg jpeg)
    log "$npng PNG ($png_in bytes), $njpeg JPEG ($jpeg_in bytes); $(find "$work" -size +1M -type f | wc -l) files over 1 MB"

    # kiln: names kept, no precompression (images are not precompressed anyway), no cache.
    printf 'hash = "none"\n[compress]\ngzip = false\nbrotli = false\n' >"$work/kiln.toml"
    local kind
    {
        echo "| kind | tool | files | before | after | saved | wall | CPU | efficiency | time vs kiln |"
        echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
        for kind in png jpeg; do
            local files before ext
            if [[ $kind == png ]]; then files=$npng before=$png_in ext=(png); else files=$njpeg before=$jpeg_in ext=(jpg jpeg); fi
            rm -rf "$work/out"
            run kiln "$KILN" build "$work/$kind" -o "$work/out" --config "$work/kiln.toml" --no-cache -q --no-report
            local kiln_wall=$WALL
            row "kiln" "$kind" "$files" "$before" "$(bytes "$work/out" "${ext[@]}")" "$WALL" "$CPU" "$kiln_wall" "$CORES"
            if [[ $kind == png ]]; then
                rm -rf "$work/oxi" && mkdir -p "$work/oxi"
                run oxipng "$TOOLS/bin/oxipng" -o 2 --strip safe -t "$CORES" --dir "$work/oxi" -q "$work/png"/*
                keep_smaller "$work/png" "$work/oxi"
                row "oxipng -o 2 --strip safe" png "$files" "$before" "$(bytes "$work/oxi" png)" "$WALL" "$CPU" "$kiln_wall" "$CORES"
            else
                rm -rf "$work/jt" && mkdir -p "$work/jt"
                # shellcheck disable=SC2016
                run jpegtran bash -c 'cd "$1" && ls | xargs -P "$2" -I{} jpegtran -copy none -optimize -progressive -outfile "$3/{}" "{}"' _ "$work/jpeg" "$CORES" "$work/jt"
                keep_smaller "$work/jpeg" "$work/jt"
                row "jpegtran -copy none -optimize -progressive" jpeg "$files" "$before" "$(bytes "$work/jt" jpg jpeg)" "$WALL" "$CPU" "$kiln_wall" "$CORES"
                rm -rf "$work/jo" && mkdir -p "$work/jo"
                # shellcheck disable=SC2016
                run jpegoptim bash -c 'cd "$1" && ls | xargs -P "$2" -n 4 jpegoptim -q --strip-all -d "$3"' _ "$work/jpeg" "$CORES" "$work/jo"
                keep_smaller "$work/jpeg" "$work/jo"
                row "jpegoptim --strip-all" jpeg "$files" "$before" "$(bytes "$work/jo" jpg jpeg)" "$WALL" "$CPU" "$kiln_wall" "$CORES"
            fi
        done
    } | tee "$RESULTS/images.md"
    variants
}

# delivered IMAGES VARIANTS EXTS: bytes a browser that takes EXTS (comma-separated) downloads:
# per image under IMAGES, the smaller of it and VARIANTS/<name>.<ext>. Prints "bytes count".
delivered() {
    python3 - "$@" <<'EOF'
import os, sys
images, variants, exts = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
total = count = 0
for name in os.listdir(images):
    if not name.lower().endswith((".png", ".jpg", ".jpeg")):
        continue
    size = os.path.getsize(os.path.join(images, name))
    best = size
    for ext in exts:
        v = os.path.join(variants, f"{name}.{ext}")
        if os.path.exists(v):
            best = min(best, os.path.getsize(v))
    count += best < size
    total += best
print(total, count)
EOF
}

variants() {
    local exts="webp" list='"webp"'
    if [[ ${KILN_BENCH_AVIF:-} == 1 ]]; then exts="avif,webp" list='"avif", "webp"'; fi
    printf 'hash = "none"\nkeep_originals = false\n[compress]\ngzip = false\nbrotli = false\n[images]\nvariants = [%s]\n' "$list" >"$work/variants.toml"
    {
        echo
        echo "| kind | tool | images with a variant | images before | delivered to a WebP browser | saved | wall | CPU | time vs kiln |"
        echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
        for kind in png jpeg; do
            local before opts out n
            if [[ $kind == png ]]; then before=$png_in; else before=$jpeg_in; fi
            rm -rf "$work/vout"
            run kiln "$KILN" build "$work/$kind" -o "$work/vout" --config "$work/variants.toml" --no-cache -q --no-report
            local kiln_wall=$WALL
            read -r out n < <(delivered "$work/vout" "$work/vout" "$exts")
            vrow "kiln (variants = [$list])" "$kind" "$n" "$before" "$out" "$WALL" "$CPU" "$kiln_wall"
            if [[ $kind == jpeg ]]; then
                # The same with a lower perceptual bar: what a user who lowers it gets.
                sed 's/^\[images\]$/[images]\njpeg_min_score = 80/' "$work/variants.toml" >"$work/variants80.toml"
                rm -rf "$work/vout"
                run kiln "$KILN" build "$work/$kind" -o "$work/vout" --config "$work/variants80.toml" --no-cache -q --no-report
                read -r out n < <(delivered "$work/vout" "$work/vout" "$exts")
                vrow "kiln (same, jpeg_min_score = 80)" "$kind" "$n" "$before" "$out" "$WALL" "$CPU" "$kiln_wall"
            fi
            rm -rf "$work/cw" && mkdir -p "$work/cw"
            if [[ $kind == png ]]; then opts="-lossless -q 75 -m 4"; else opts="-q 85 -m 4 -sharp_yuv"; fi
            # shellcheck disable=SC2016
            run cwebp bash -c 'cd "$1" && ls | xargs -P "$2" -I{} cwebp -quiet $4 "{}" -o "$3/{}.webp"' _ "$work/$kind" "$CORES" "$work/cw" "$opts"
            read -r out n < <(delivered "$work/$kind" "$work/cw" webp)
            vrow "cwebp $opts (no guard)" "$kind" "$n" "$before" "$out" "$WALL" "$CPU" "$kiln_wall"
        done
    } | tee -a "$RESULTS/images.md"
}

vrow() { # tool kind count before after wall cpu kiln_wall
    python3 - "$@" <<'EOF'
import sys
tool, kind, count, before, after, wall, cpu, kiln_wall = sys.argv[1:9]
before, after, wall, cpu, kiln_wall = int(before), int(after), float(wall), float(cpu), float(kiln_wall)
saved = 100 * (1 - after / before) if before else 0
ratio = "1.00×" if tool.startswith("kiln") else f"{wall / kiln_wall:.2f}×"
print(f"| {kind} | {tool} | {count} | {before/1e6:.2f} MB | {after/1e6:.2f} MB | {saved:.1f}% | {wall:.2f} s | {cpu:.2f} s | {ratio} |")
EOF
}

main "$@"
