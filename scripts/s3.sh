# Sourced by scripts/test: starts an S3-compatible server (moto, from PyPI) on
# loopback for the tests that put Delta tables on object storage, creates the
# test bucket, exports TESSERA_TEST_S3_ENDPOINT, TESSERA_TEST_S3_BUCKET and the
# credentials the tests use (TESSERA_TEST_S3_ACCESS_KEY_ID,
# TESSERA_TEST_S3_SECRET_ACCESS_KEY), and stops the server on exit. An endpoint
# already set in the environment is used as it is.
#
# moto accepts any credentials; the secret is distinctive so that scripts/test
# can look for it in the logs of the run (it must never be there).

start_s3() {
    export TESSERA_TEST_S3_ACCESS_KEY_ID=${TESSERA_TEST_S3_ACCESS_KEY_ID:-TESSERATESTS3ACCESSKEY}
    export TESSERA_TEST_S3_SECRET_ACCESS_KEY=${TESSERA_TEST_S3_SECRET_ACCESS_KEY:-tessera-test-s3-secret-7c1e9a4b2d6f8e03}
    if [[ -n "${TESSERA_TEST_S3_ENDPOINT:-}" ]]; then
        echo "s3: using $TESSERA_TEST_S3_ENDPOINT"
        return
    fi
    local venv=${TESSERA_S3_VENV:-$HOME/.cache/tessera/s3venv}
    if [[ ! -x "$venv/bin/moto_server" ]]; then
        echo "s3: installing moto[server] 5.2.5 into $venv"
        python3 -m venv "$venv"
        "$venv/bin/pip" install -q --disable-pip-version-check "moto[server]==5.2.5"
    fi
    local port
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    local log
    log=$(mktemp -t tessera-moto.XXXXXX)
    "$venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$log" 2>&1 &
    S3_PID=$!
    trap 'kill "$S3_PID" 2>/dev/null || true' EXIT
    export TESSERA_TEST_S3_ENDPOINT="http://127.0.0.1:$port"
    export TESSERA_TEST_S3_BUCKET=tessera-test
    for _ in $(seq 100); do
        curl -sf -o /dev/null "$TESSERA_TEST_S3_ENDPOINT/" && break
        sleep 0.1
    done
    curl -sf -o /dev/null -X PUT "$TESSERA_TEST_S3_ENDPOINT/$TESSERA_TEST_S3_BUCKET" || {
        echo "s3: moto did not start (log: $log)" >&2
        cat "$log" >&2
        return 1
    }
    echo "s3: moto on $TESSERA_TEST_S3_ENDPOINT (pid $S3_PID), bucket $TESSERA_TEST_S3_BUCKET"
}
