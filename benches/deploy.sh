#!/usr/bin/env bash
# Benchmark `kiln deploy` against `aws s3 sync` (awscli v1, PyPI) and `rclone sync --checksum`
# (Debian) on one local S3-compatible server (SeaweedFS, tests/s3/), all in the same run:
# the kiln build of the Python 3.11 docs deployed in full, then redeployed unchanged (no-op),
# then redeployed after 10 pages of library/ changed. Each tool has its own bucket and its
# own counting proxy (tests/s3/proxy.py, wrapped by benches/deploy_bench.py to also count
# the bytes sent), so requests and bytes are counted per tool and step.
#
# Usage: benches/deploy.sh
# Env:   KILN              kiln binary with `deploy` (default: ${CARGO_TARGET_DIR:-target}/release/kiln,
#                          built with cargo if missing)
#        KILN_BUILD        kiln binary for the two `kiln build` steps (default: $KILN); e.g. a
#                          release build when KILN is a debug one
#        KILN_BENCH_CACHE  doc tree, outputs and results (default: ~/.cache/kiln-bench); the
#                          Python docs tree is assembled by benches/build.sh (run here if missing)
#        DEPLOY_CONCURRENCY  uploads in flight for every tool (default 16, kiln's default)
# Needs: Debian/Ubuntu (apt) and python3. Installs rclone (apt), awscli (pinned, into
#        $CACHE/awscli-venv) and SeaweedFS (tests/s3/setup.sh).
# Results: $CACHE/results/deploy.md (the Markdown table, also printed), deploy.jsonl (one
#        record per run) and deploy-logs/ (each tool's output). Scratch files (a copy of the
#        source tree, the server's data, the tools' configs) go in $CACHE/deploy-work and are
#        removed on exit, with the server and the proxies.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${KILN_BENCH_CACHE:-$HOME/.cache/kiln-bench}
RESULTS=$CACHE/results
LOGS=$RESULTS/deploy-logs
JSONL=$RESULTS/deploy.jsonl
WORK=$CACHE/deploy-work
OUT=$CACHE/out/deploy-docs
DOCS=$CACHE/python-docs
CONCURRENCY=${DEPLOY_CONCURRENCY:-16}
AWSCLI_VERSION=1.46.3
HELPER=$REPO/benches/deploy_bench.py
SERVER_PY=$REPO/tests/s3/server.py
BUCKET_PREFIX=kiln-bench

log() { echo "bench: $*" >&2; }
die() { log "error: $*"; exit 1; }
# shellcheck source=benches/lib.sh
source "$REPO/benches/lib.sh"

PROXY_PIDS=()
SERVER_STARTED=no

cleanup() {
    local rc=$? pid
    trap - EXIT INT TERM
    for pid in "${PROXY_PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    if [[ $SERVER_STARTED == yes ]]; then
        python3 "$SERVER_PY" stop --dir "$WORK/s3" --timeout 0 2>/dev/null || true
    fi
    rm -rf "$WORK"
    exit "$rc"
}

# A run killed with SIGKILL leaves its scratch dir, server and proxies: stop them (only
# processes that the pid files name and that are ours), then start clean.
clean_stale_work() {
    [[ -d $WORK ]] || return 0
    log "removing a stale $WORK"
    local f pid
    for f in "$WORK"/proxy-*.pid; do
        [[ -f $f ]] || continue
        pid=$(<"$f")
        if [[ -r /proc/$pid/cmdline && $(tr '\0' ' ' <"/proc/$pid/cmdline") == *"deploy_bench.py proxy"* ]]; then
            kill "$pid" 2>/dev/null || true
        fi
    done
    if [[ -d $WORK/s3 ]]; then
        python3 "$SERVER_PY" stop --dir "$WORK/s3" --timeout 0 2>/dev/null || true
    fi
    rm -rf "$WORK"
}

json_field() { python3 -c 'import json, sys; print(json.loads(sys.stdin.readline())[sys.argv[1]])' "$1"; }
file_count() { find "$1" -type f | wc -l; }
size_mib() { du -sb "$1" | awk '{printf "%.1f", $1 / 1048576}'; }

# awscli v1 from PyPI, pinned, in its own venv (kept between runs).
ensure_awscli() {
    local venv=$CACHE/awscli-venv
    AWS=$venv/bin/aws
    if [[ -x $AWS && $("$AWS" --version 2>&1 || true) == "aws-cli/$AWSCLI_VERSION "* ]]; then
        return
    fi
    log "installing awscli==$AWSCLI_VERSION into $venv"
    rm -rf "$venv"
    if ! python3 -m venv "$venv" >/dev/null 2>&1; then
        rm -rf "$venv"
        ensure_pkg python3-venv
        python3 -m venv "$venv"
    fi
    "$venv/bin/python" -m pip install --disable-pip-version-check --no-input -q "awscli==$AWSCLI_VERSION" >&2
    "$AWS" --version >/dev/null 2>&1 || die "awscli installed but $AWS does not run"
}

# start_proxy NAME: a counting proxy in front of the server; sets PROXY to its endpoint.
start_proxy() {
    local name=$1 file=$WORK/proxy-$1.json pid i
    python3 "$HELPER" proxy --upstream "$S3_ENDPOINT" >"$file" 2>"$LOGS/proxy-$name.stderr" &
    pid=$!
    PROXY_PIDS+=("$pid")
    echo "$pid" >"$WORK/proxy-$name.pid"
    for ((i = 0; i < 100; i++)); do
        [[ -s $file ]] && break
        kill -0 "$pid" 2>/dev/null || die "proxy $name exited: $(tail -5 "$LOGS/proxy-$name.stderr")"
        sleep 0.1
    done
    [[ -s $file ]] || die "proxy $name did not start"
    PROXY=$(json_field endpoint <"$file")
}

# run_tool TOOL STEP: one timed deploy of $OUT through that tool's proxy into its bucket.
run_tool() {
    local tool=$1 step=$2 proxy bucket cmd
    case $tool in
    kiln)
        proxy=$PROXY_KILN bucket=$BUCKET_PREFIX-kiln
        cmd=(env -u AWS_PROFILE -u AWS_DEFAULT_PROFILE -u AWS_SESSION_TOKEN -u AWS_ENDPOINT_URL
            AWS_ACCESS_KEY_ID="$ACCESS_KEY" AWS_SECRET_ACCESS_KEY="$SECRET_KEY"
            AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
            AWS_CONFIG_FILE="$WORK/empty" AWS_SHARED_CREDENTIALS_FILE="$WORK/empty"
            "$KILN" deploy "$OUT" --to "s3://$bucket" --endpoint "$proxy" --path-style
            --json --concurrency "$CONCURRENCY")
        ;;
    aws)
        proxy=$PROXY_AWS bucket=$BUCKET_PREFIX-aws
        cmd=(env -u AWS_PROFILE -u AWS_DEFAULT_PROFILE -u AWS_SESSION_TOKEN -u AWS_ENDPOINT_URL
            AWS_ACCESS_KEY_ID="$ACCESS_KEY" AWS_SECRET_ACCESS_KEY="$SECRET_KEY"
            AWS_DEFAULT_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
            AWS_CONFIG_FILE="$WORK/aws-config" AWS_SHARED_CREDENTIALS_FILE="$WORK/empty"
            "$AWS" s3 sync "$OUT" "s3://$bucket" --endpoint-url "$proxy" --no-progress)
        ;;
    rclone)
        proxy=$PROXY_RCLONE bucket=$BUCKET_PREFIX-rclone
        # rclone's aws-sdk-go fails on AWS_CA_BUNDLE (set on some machines) with
        # "LoadCustomCABundleError: ... unsupported transport"; the endpoint is plain http.
        cmd=(env -u AWS_CA_BUNDLE RCLONE_CONFIG="$WORK/rclone.conf"
            RCLONE_CONFIG_BENCH_TYPE=s3 RCLONE_CONFIG_BENCH_PROVIDER=Other
            RCLONE_CONFIG_BENCH_ENDPOINT="$proxy"
            RCLONE_CONFIG_BENCH_ACCESS_KEY_ID="$ACCESS_KEY"
            RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY="$SECRET_KEY"
            RCLONE_CONFIG_BENCH_FORCE_PATH_STYLE=true RCLONE_CONFIG_BENCH_REGION=us-east-1
            rclone sync --checksum "$OUT" "bench:$bucket"
            --transfers "$CONCURRENCY" --checkers "$CONCURRENCY"
            --use-json-log --log-level INFO --log-file "{LOG}" --stats 0)
        ;;
    esac
    python3 "$HELPER" run --tool "$tool" --step "$step" --proxy "$proxy" --out "$OUT" \
        --logs "$LOGS" --results "$JSONL" -- "${cmd[@]}"
}

main() {
    local t_start=$SECONDS
    cd "$REPO"
    trap cleanup EXIT
    trap 'exit 130' INT TERM
    mkdir -p "$RESULTS" "$CACHE/out"
    rm -rf "$LOGS" "$JSONL"
    mkdir -p "$LOGS"
    clean_stale_work
    mkdir -p "$WORK"

    # Tools.
    ensure_pkg rclone
    ensure_awscli
    local weed
    weed=$(bash "$REPO/tests/s3/setup.sh")
    find_kiln
    KILN_BUILD=$(realpath "${KILN_BUILD:-$KILN}")
    "$KILN" deploy --help >/dev/null 2>&1 ||
        die "$KILN has no deploy subcommand: set KILN to a build that has it"
    [[ -d $DOCS ]] || {
        log "no $DOCS: running benches/build.sh to assemble it (about 10 minutes)"
        "$REPO/benches/build.sh"
    }
    local kiln_version aws_version rclone_version weed_version
    kiln_version=$("$KILN" --version)
    # (sed -n 1p, not head: head's early exit would SIGPIPE the writer, fatal under pipefail)
    aws_version=$("$AWS" --version 2>&1 | sed -n 1p)
    rclone_version=$(rclone version 2>/dev/null | sed -n 1p)
    weed_version=$("$weed" version 2>/dev/null | sed -n 1p)
    log "kiln: $KILN ($kiln_version); builds with $KILN_BUILD"
    log "$aws_version; $rclone_version; weed $weed_version; $(nproc) cores"

    # The build, from the pristine docs tree (it also undoes a previous run's edits), and a
    # scratch copy of the source for the change step.
    log "building $DOCS -> $OUT"
    local t0=$SECONDS
    "$KILN_BUILD" build "$DOCS" -o "$OUT" --quiet --cache-dir "$CACHE/kiln-cache" \
        2>"$LOGS/build-diagnostics.txt"
    log "build: $((SECONDS - t0)) s; $(file_count "$OUT") files, $(size_mib "$OUT") MiB"
    cp -a "$DOCS" "$WORK/src"

    # Server, buckets, proxies, tool configs.
    local server
    server=$(python3 "$SERVER_PY" start --dir "$WORK/s3")
    SERVER_STARTED=yes
    S3_ENDPOINT=$(json_field endpoint <<<"$server")
    ACCESS_KEY=$(json_field access_key <<<"$server")
    SECRET_KEY=$(json_field secret_key <<<"$server")
    log "SeaweedFS at $S3_ENDPOINT"
    python3 "$HELPER" create-buckets --endpoint "$S3_ENDPOINT" \
        "$BUCKET_PREFIX-kiln" "$BUCKET_PREFIX-aws" "$BUCKET_PREFIX-rclone"
    start_proxy kiln
    PROXY_KILN=$PROXY
    start_proxy aws
    PROXY_AWS=$PROXY
    start_proxy rclone
    PROXY_RCLONE=$PROXY
    : >"$WORK/empty"
    : >"$WORK/rclone.conf"
    AWS_CONFIG_FILE=$WORK/aws-config "$AWS" configure set default.region us-east-1
    AWS_CONFIG_FILE=$WORK/aws-config "$AWS" configure set default.s3.addressing_style path
    AWS_CONFIG_FILE=$WORK/aws-config "$AWS" configure set default.s3.max_concurrent_requests "$CONCURRENCY"

    local tool
    log "step 1: full deploy"
    for tool in kiln aws rclone; do run_tool "$tool" full; done
    log "step 2: no-op redeploy"
    for tool in kiln aws rclone; do run_tool "$tool" noop; done

    log "step 3: 10 pages of library/ edited, rebuilt into the same output"
    local edited marker=$WORK/before-rebuild changed
    edited=$(python3 "$HELPER" edit --src "$WORK/src" --count 10)
    log "edited: $edited"
    touch "$marker"
    sleep 1.1 # mtimes newer than the marker (and than the uploads) by at least a second
    t0=$SECONDS
    "$KILN_BUILD" build "$WORK/src" -o "$OUT" --quiet --cache-dir "$CACHE/kiln-cache" \
        2>>"$LOGS/build-diagnostics.txt"
    changed=$(find "$OUT" -type f -newer "$marker" | wc -l)
    log "rebuild: $((SECONDS - t0)) s; $changed output files rewritten"
    for tool in kiln aws rclone; do run_tool "$tool" change; done

    local corpus_files corpus_mib elapsed
    corpus_files=$(file_count "$OUT")
    corpus_mib=$(size_mib "$OUT")
    elapsed=$((SECONDS - t_start))
    local profile=release
    [[ $KILN == */debug/* ]] && profile="debug (unoptimised)"
    {
        echo "## kiln deploy vs aws s3 sync vs rclone sync --checksum"
        echo
        echo "Corpus: the kiln build of the Python 3.11 docs, $corpus_files files, $corpus_mib MiB" \
            "(pages, assets and their .gz/.br variants). Server: SeaweedFS ($weed_version) on" \
            "loopback, one bucket per tool, each tool behind its own counting proxy. $(nproc) cores;" \
            "one run per cell, so wall times are noisy. $(date -u '+%Y-%m-%d %H:%M UTC')."
        echo
        python3 "$HELPER" table --results "$JSONL" \
            --note "Notes:" \
            --note "- Tools: $kiln_version ($profile build: \`$KILN\`), $aws_version, $rclone_version." \
            --note "- Concurrency: kiln \`--concurrency $CONCURRENCY\` (its default); aws \`s3.max_concurrent_requests = $CONCURRENCY\` (its default is 10); rclone \`--transfers $CONCURRENCY --checkers $CONCURRENCY\`." \
            --note "- Wall time: the whole command (process start-up included), with Python's time.perf_counter; × kiln is the tool's wall time over kiln's for the same step." \
            --note "- Requests and PUTs: counted at each tool's proxy (retries included); the proxy was reset before each run." \
            --note "- Bytes sent: request body bytes forwarded by the proxy, as framed on the wire (tests/s3/proxy.py does not count bytes; benches/deploy_bench.py wraps it to add the counter). File bytes uploaded: the sizes of the files each tool reports it uploaded (kiln: uploaded_bytes + updated_bytes; aws: its \`upload:\` lines; rclone: its \`Copied\` log lines)." \
            --note "- The tools do not upload the same things: kiln uploads the objects of its manifest with Content-Type, Cache-Control and Content-Encoding (.gz/.br) headers and writes a state object; aws and rclone upload every file of the directory (kiln-manifest.json too) with guessed Content-Types only, and rclone adds an mtime metadata header." \
            --note "- kiln's request bodies also carry its state object (.kiln-deploy.json, written when anything changed), which its uploaded_bytes leaves out. Each tool's defaults were kept otherwise: rclone without \`--fast-list\` (one ListObjects per directory) or \`--s3-no-head\` (a HeadObject after each upload); aws with \`Expect: 100-continue\` on its uploads." \
            --note "- Change step: $edited edited in a scratch copy of the source, rebuilt into the same output ($changed files rewritten, other mtimes kept, which aws s3 sync relies on)." \
            --note "- The script took ${elapsed} s in all."
    } | tee "$RESULTS/deploy.md"
    log "results in $RESULTS/deploy.md, $JSONL and $LOGS; ${elapsed} s in all"
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
    main "$@"
fi
