#!/usr/bin/env bash
# Checks the project's ODCS contracts with tools no one here wrote:
#   - every contract under contracts/examples (the examples) and
#     src/demo/contracts (the demo mesh's products) passes `datacontract lint`
#     (datacontract-cli from PyPI, with the ODCS schema it bundles), and
#   - Tessera's export of each (YAML and JSON) validates against the official
#     ODCS JSON schema of its apiVersion (contracts/schemas/).
# Usage: scripts/odcs-lint.sh PATH/TO/tessera
set -euo pipefail
cd "$(dirname "$0")/.."
DC_VERSION=1.2.8
VENV=${TESSERA_DC_VENV:-$HOME/.cache/tessera/dcvenv}
BIN=${1:?usage: $0 PATH/TO/tessera}

installed() { "$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("datacontract-cli"))' 2>/dev/null || true; }
if [[ "$(installed)" != "$DC_VERSION" ]]; then
    echo "odcs-lint.sh: installing datacontract-cli==$DC_VERSION into $VENV"
    "${PYTHON:-python3}" -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check "datacontract-cli==$DC_VERSION"
fi
[[ "$(installed)" == "$DC_VERSION" ]] || { echo "odcs-lint.sh: datacontract-cli $DC_VERSION missing" >&2; exit 2; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
checked=0
files=()
for dir in contracts/examples src/demo/contracts; do
    found=("$dir"/*.odcs.yaml)
    [[ -f ${found[0]} ]] || { echo "odcs-lint.sh: no contracts found in $dir" >&2; exit 1; }
    files+=("${found[@]}")
done
for file in "${files[@]}"; do
    # --no-inline-references: lint must not fetch authoritative definitions online.
    "$VENV/bin/datacontract" lint --no-inline-references "$file" >"$work/out" 2>&1 ||
        { cat "$work/out"; echo "odcs-lint.sh: $file fails datacontract lint" >&2; exit 1; }
    version=$(sed -n 's/^apiVersion: *//p' "$file" | head -n 1)
    schema=contracts/schemas/odcs-json-schema-$version.json
    [[ -f $schema ]] || { echo "odcs-lint.sh: no official schema for $version" >&2; exit 1; }
    for format in yaml json; do
        exported=$work/export.$format
        "$BIN" contract export "$file" --format "$format" >"$exported"
        "$VENV/bin/datacontract" lint --no-inline-references --json-schema "$schema" "$exported" >"$work/out" 2>&1 ||
            { cat "$work/out"; echo "odcs-lint.sh: Tessera's $format export of $file fails the official $version schema" >&2; exit 1; }
    done
    checked=$((checked + 1))
    echo "odcs-lint.sh: $file: datacontract lint ok; YAML and JSON exports valid against $schema"
done
((checked > 0)) || { echo "odcs-lint.sh: no contracts found" >&2; exit 1; }
