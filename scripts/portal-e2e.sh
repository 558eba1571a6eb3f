#!/usr/bin/env bash
# The portal in headless Chromium (Debian's) against a real `tessera demo` (the
# given binary, e.g. the dev build): every page as the demo's personas, axe-core,
# the main flows, screenshots in portal/test-results/. The browser's network is
# limited to loopback.
# Usage: scripts/portal-e2e.sh PATH/TO/tessera
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:?usage: $0 PATH/TO/tessera}
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
[[ -x $CHROMIUM ]] || { echo "portal-e2e.sh: no browser at $CHROMIUM" >&2; exit 2; }
(cd portal && [[ -d node_modules ]] || npm ci --no-audit --no-fund)

(cd tests/oidc && [[ -d node_modules ]] || npm ci --no-audit --no-fund --loglevel=error)

work=$(mktemp -d)
demo_pid=
oidc_pid=
cleanup() {
    # Stopped by SIGTERM, node exits 143: not this script's outcome.
    local pid
    for pid in $demo_pid $oidc_pid; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# An OpenID Connect provider no one here wrote (tests/oidc), for signing in
# with an issuer: the portal is its public client, returning to the demo's
# /signin/callback, so the demo's port is chosen first.
portal_port=$(free_port)
oidc_port=$(free_port)
cat >"$work/oidc.json" <<EOF
{"port": $oidc_port, "keys_dir": "$work/oidc-keys", "kids": ["portal"],
 "users": {"ana": {"preferred_username": "ana"}},
 "redirect_uris": ["http://127.0.0.1:$portal_port/signin/callback"]}
EOF
node tests/oidc/provider.mjs "$work/oidc.json" >"$work/oidc.out" 2>"$work/oidc.err" &
oidc_pid=$!
for _ in $(seq 60); do
    grep -q '^oidc-provider listening' "$work/oidc.out" && break
    sleep 0.5
done
grep -q '^oidc-provider listening' "$work/oidc.out" || { cat "$work/oidc.err" >&2; echo "portal-e2e.sh: the OIDC provider did not start" >&2; exit 1; }
cat >"$work/tessera.toml" <<EOF
[[identity.issuers]]
issuer = "http://127.0.0.1:$oidc_port"
audiences = ["tessera"]
algorithms = ["RS256"]

[identity.issuers.claims]
principal = "preferred_username"

[identity.issuers.portal]
client_id = "portal"
scope = "openid query"
resource = "urn:tessera"
EOF

"$BIN" demo --scale 0.01 --data-dir "$work/mesh" --config "$work/tessera.toml" --listen "127.0.0.1:$portal_port" \
    --pg-listen 127.0.0.1:0 --flight-listen 127.0.0.1:0 >"$work/out" 2>"$work/err" &
demo_pid=$!
for _ in $(seq 600); do
    grep -q '^Stop with Ctrl-C' "$work/out" && break
    kill -0 "$demo_pid" 2>/dev/null || { cat "$work/err" >&2; echo "portal-e2e.sh: the demo stopped" >&2; exit 1; }
    sleep 0.5
done
url=$(sed -n 's/^Tessera catalog listening on //p' "$work/out")
[[ -n $url ]] || { echo "portal-e2e.sh: the demo did not come up" >&2; exit 1; }
rm -rf portal/test-results
(cd portal && PORTAL_URL=$url PORTAL_OIDC_USER=ana TESSERA_PERSONAS=$work/mesh/demo/personas.json CHROMIUM=$CHROMIUM npm run --silent test:e2e) | tee "$work/tap" | grep -E '^# (tests|pass|fail|skipped)|^not ok|^    not ok' || true
# Skipped or failed is a failure here: the test command provides everything.
grep -q '^# fail 0$' "$work/tap" && grep -q '^# skipped 0$' "$work/tap" && ! grep -q '^# pass 0$' "$work/tap" ||
    { cat "$work/tap"; echo "portal-e2e.sh: browser tests failed" >&2; exit 1; }
echo "portal-e2e.sh: $(sed -n 's/^# pass //p' "$work/tap") browser tests passed; screenshots in portal/test-results/"
