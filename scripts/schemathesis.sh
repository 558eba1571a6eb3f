#!/usr/bin/env bash
# Fuzz the catalog's REST API against its own OpenAPI document with schemathesis.
#
# Usage: scripts/schemathesis.sh PATH/TO/tessera [extra `st run` options...]
#
# Starts `tessera serve` on a free loopback port with a fresh data dir and a
# random bootstrap admin key, runs `st run` against $URL/api/v1/openapi.json,
# and exits with schemathesis' status (0 ok, 1 failures, 2 error / nothing
# tested, 124 hard timeout). The server is stopped and the temp dir removed on
# exit.
#
# Environment (all optional):
#   TESSERA_VENV               venv holding schemathesis (default ~/.cache/tessera/venv)
#   TESSERA_ST_MAX_EXAMPLES    examples per operation, fuzzing/stateful phases (default 25)
#   TESSERA_ST_SEED            hypothesis seed (default 20240601), for reproducible runs
#   TESSERA_ST_TIMEOUT         hard cap in seconds on the `st run` process (default 240)
#   TESSERA_ST_CHECKS          comma-separated checks (default: see CHECKS below)
#   TESSERA_ST_KEEP            if set to 1, keep the temp dir (server log, junit report)
set -euo pipefail

ST_VERSION=4.32.5
VENV=${TESSERA_VENV:-$HOME/.cache/tessera/venv}
MAX_EXAMPLES=${TESSERA_ST_MAX_EXAMPLES:-25}
SEED=${TESSERA_ST_SEED:-20240601}
RUN_TIMEOUT=${TESSERA_ST_TIMEOUT:-240}
START_TIMEOUT=60
# Every check about "no server error, no response that contradicts the document".
# Left out on purpose: positive_data_acceptance (fails on 400/422 for data the
# schema allows, i.e. whenever the server validates more than the document says)
# and object_level_authorization (needs two identities configured as WFC peers).
CHECKS=${TESSERA_ST_CHECKS:-not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance,negative_data_rejection,ignored_auth,missing_required_header,unsupported_method,allow_header_conformance,use_after_free,ensure_resource_availability}

die() {
    echo "schemathesis.sh: $*" >&2
    exit 2
}

[[ $# -ge 1 ]] || die "usage: $0 PATH/TO/tessera [extra st run options]"
BIN=$1
shift
[[ -x $BIN ]] || die "tessera binary not found or not executable: $BIN"

# --- schemathesis venv (reruns skip the install when the pinned version is there)
installed_version() {
    "$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("schemathesis"))' 2>/dev/null || true
}

ensure_schemathesis() {
    if [[ -x $VENV/bin/st && "$(installed_version)" == "$ST_VERSION" ]]; then
        return 0
    fi
    mkdir -p "$(dirname "$VENV")"
    (
        # Serialise concurrent installs into the same venv.
        if command -v flock >/dev/null 2>&1; then
            exec 9>"$VENV.lock"
            flock 9
        fi
        if [[ -x $VENV/bin/st && "$(installed_version)" == "$ST_VERSION" ]]; then
            exit 0
        fi
        if ! "$VENV/bin/python" -c '' 2>/dev/null; then
            echo "schemathesis.sh: creating venv $VENV"
            "${PYTHON:-python3}" -m venv --clear "$VENV"
        fi
        echo "schemathesis.sh: installing schemathesis==$ST_VERSION into $VENV"
        "$VENV/bin/python" -m pip install -q --disable-pip-version-check "schemathesis==$ST_VERSION"
    )
    [[ "$(installed_version)" == "$ST_VERSION" ]] ||
        die "schemathesis $ST_VERSION is not installed in $VENV (found: '$(installed_version)')"
}

ensure_schemathesis

# --- start the catalog
WORK=$(mktemp -d "${TMPDIR:-/tmp}/tessera-st.XXXXXX")
mkdir -p "$WORK/data" "$WORK/cwd"
LOG=$WORK/server.log
: >"$LOG" # exists before the first poll, whoever wins the race with the server
SERVER_PID=

cleanup() {
    local rc=$?
    if [[ -n $SERVER_PID ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill "$SERVER_PID" 2>/dev/null || true
        # Give it 5 s to stop cleanly, then SIGKILL.
        for _ in $(seq 50); do
            kill -0 "$SERVER_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    if [[ ${TESSERA_ST_KEEP:-0} == 1 ]]; then
        echo "schemathesis.sh: kept $WORK"
    else
        rm -rf "$WORK"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

show_log() {
    echo "----- tessera log ($LOG) -----" >&2
    tail -n 100 "$LOG" >&2 || true
    echo "----- end of tessera log -----" >&2
}

KEY=$("$VENV/bin/python" -c 'import secrets; print("tsk_%s_%s" % (secrets.token_hex(6), secrets.token_hex(32)))')

# The ignored_auth check sends wrong credentials on purpose, all from
# 127.0.0.1: failed-authentication throttling is raised out of its way (its
# 429 is documented, and tested in tests/e2e/throttle.rs).
TESSERA_THROTTLE__BURST=1000000000 TESSERA_BOOTSTRAP_KEY=$KEY "$BIN" serve --data-dir "$WORK/data" --listen 127.0.0.1:0 >"$LOG" 2>&1 </dev/null &
SERVER_PID=$!

URL=
deadline=$((SECONDS + START_TIMEOUT))
while ((SECONDS < deadline)); do
    URL=$(sed -n 's|.*Tessera catalog listening on \(http://[^[:space:]]*\).*|\1|p' "$LOG" | head -n 1)
    [[ -n $URL ]] && break
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        show_log
        die "tessera exited before it was listening"
    fi
    sleep 0.2
done
if [[ -z $URL ]]; then
    show_log
    die "tessera did not print 'Tessera catalog listening on http://...' within ${START_TIMEOUT}s"
fi
URL=${URL%/}
echo "schemathesis.sh: tessera (pid $SERVER_PID) listening on $URL"

# --- seed the mesh the document's examples name (olga, sales_team, sales,
# sales.orders, contract 1.0.0), so that the examples phase reaches real
# resources instead of 404s
seed() {
    local method=$1 path=$2 type=$3 body=$4 code
    code=$(curl -s -o "$WORK/seed.out" -w '%{http_code}' -X "$method" "$URL/api/v1$path" \
        -H "Authorization: Bearer $KEY" -H "Content-Type: $type" --data-binary "$body")
    [[ $code == 2* ]] || { cat "$WORK/seed.out" >&2; die "seeding $method $path answered $code"; }
}
seed POST /principals application/json '{"name":"olga","kind":"user","email":"olga@example.com"}'
seed POST /teams application/json '{"name":"sales_team","members":["olga"]}'
seed POST /domains application/json '{"name":"sales","owner_team":"sales_team"}'
seed POST /domains/sales/products application/json '{"name":"orders","tags":["tpch"]}'
seed POST /domains/sales/products/orders/contracts application/yaml $'apiVersion: v3.1.0\nkind: DataContract\nid: orders\nversion: 1.0.0\nstatus: active\nschema:\n  - name: orders\n    properties:\n      - name: o_orderkey\n        logicalType: integer\n        required: true\n'

# --- run schemathesis
# An explicit config file keeps any schemathesis.toml in the tree from changing
# the run; it only holds what has no CLI flag: fail when every request was
# rejected as unauthenticated (the run would otherwise pass without testing).
cat >"$WORK/schemathesis.toml" <<'EOF'
[warnings]
fail-on = ["missing_auth"]
EOF

ST_ARGS=(
    --config-file "$WORK/schemathesis.toml"
    --no-color
    # No --url: schemathesis takes scheme://host:port from the document's own
    # location and the path of servers[0].url (if any), so a relative or absent
    # `servers` works; --url would replace that path and break a `/api/v1` server.
    run "$URL/api/v1/openapi.json"
    --header "Authorization: Bearer $KEY"
    --checks "$CHECKS"
    --max-examples "$MAX_EXAMPLES"
    --seed "$SEED"
    --generation-database none
    --wait-for-schema 30
    --request-timeout 10
    # The watch is a long-poll: most generated calls would wait out their full
    # timeout. The conformance suite covers it (change_log_and_watch).
    --exclude-path /api/v1/version/watch
    # Only a gateway's principal reads bundles (an admin's key gets 403); the
    # conformance suite covers it with one (governance, the_mask_key_is_only_in_bundles).
    --exclude-path /api/v1/bundle
    --report junit
    --report-junit-path "$WORK/junit.xml"
    "$@"
)

echo "schemathesis.sh: st ${ST_ARGS[*]//$KEY/<key>}"
rc=0
# Run from an empty dir so nothing (.hypothesis/, reports) lands in the tree.
(cd "$WORK/cwd" && timeout --kill-after=10 "$RUN_TIMEOUT" "$VENV/bin/st" "${ST_ARGS[@]}") || rc=$?

case $rc in
0) echo "schemathesis.sh: PASSED (seed $SEED, $MAX_EXAMPLES examples/operation)" ;;
1) echo "schemathesis.sh: FAILED: schemathesis found failures (rerun with TESSERA_ST_SEED=$SEED to reproduce)" >&2 ;;
124 | 137) echo "schemathesis.sh: FAILED: st run exceeded ${RUN_TIMEOUT}s" >&2 ;;
*) echo "schemathesis.sh: ERROR: st run exited with $rc (schema/config error or nothing tested)" >&2 ;;
esac
if ((rc != 0)); then
    show_log
fi
exit "$rc"
