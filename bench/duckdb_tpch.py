#!/usr/bin/env python3
"""The TPC-H suite in DuckDB with its delta extension over the demo mesh's Delta
tables: the peer baseline of shared/bench.md.

    duckdb_tpch.py --lake DIR --queries DIR [--rounds N] [--warmup N] [--threads N]

Each domain of the mesh (customers, sales, supply) becomes a schema with one view
per product over ``delta_scan('<lake>/<domain>/<product>')``, so that the queries'
domain-qualified names (``sales.lineitem``) run as they are, the same SQL text as
every other configuration. Every query runs ``--warmup`` times unmeasured, then
``--rounds`` times measured, fetching the whole result.

Prints one JSON object on stdout::

    {"q01": {"seconds": <median>, "rounds": [<s>, ...], "rows": <n>}, ...,
     "duckdb_version": "1.5.5", "delta_extension": "<its version>", "threads": <n>}

A query that fails is ``null`` (its error goes to stderr). The extension comes
from the pip package ``duckdb-extension-delta``, which ships the binary of
DuckDB's own version under ``extensions/v<version>/delta.duckdb_extension`` and
nothing else: it is loaded from that file. Without the package the script falls
back to ``INSTALL delta`` from DuckDB's repository.
"""

import argparse
import json
import pathlib
import statistics
import sys
import time

import duckdb

# The demo mesh: domain -> products (tessera_lake::tpch::MESH).
MESH = {
    "customers": ["region", "nation", "customer"],
    "supply": ["part", "supplier", "partsupp"],
    "sales": ["orders", "lineitem"],
}


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def extension_path():
    """The extension binary shipped by duckdb-extension-delta for this DuckDB, if any."""
    try:
        import duckdb_extension_delta
    except ImportError:
        return None
    root = pathlib.Path(duckdb_extension_delta.__file__).parent / "extensions"
    exact = root / f"v{duckdb.__version__}" / "delta.duckdb_extension"
    if exact.is_file():
        return exact
    found = sorted(root.glob("v*/delta.duckdb_extension"))
    if found:
        log(f"duckdb-extension-delta has no build for DuckDB {duckdb.__version__}; trying {found[-1]}")
        return found[-1]
    return None


def connect(threads):
    config = {"allow_unsigned_extensions": "true"}
    if threads:
        config["threads"] = threads
    con = duckdb.connect(":memory:", config=config)
    path = extension_path()
    if path is not None:
        con.execute(f"LOAD '{path}'")
    else:
        log("duckdb-extension-delta is not installed: INSTALL delta from DuckDB's repository")
        con.execute("INSTALL delta")
        con.execute("LOAD delta")
    return con


def create_views(con, lake):
    for domain, products in MESH.items():
        con.execute(f'CREATE SCHEMA IF NOT EXISTS "{domain}"')
        for product in products:
            location = (lake / domain / product).resolve()
            if not (location / "_delta_log").is_dir():
                raise SystemExit(f"no Delta table at {location}")
            literal = str(location).replace("'", "''")
            con.execute(f'CREATE VIEW "{domain}"."{product}" AS SELECT * FROM delta_scan(\'{literal}\')')


def queries(folder):
    out = {}
    for path in sorted(folder.glob("q*.sql")):
        sql = path.read_text().strip().rstrip(";").strip()
        out[path.stem] = sql
    if not out:
        raise SystemExit(f"no q*.sql in {folder}")
    return out


def run_once(con, sql):
    started = time.perf_counter()
    rows = con.execute(sql).fetchall()
    return time.perf_counter() - started, len(rows)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lake", required=True, type=pathlib.Path, help="root of <domain>/<product> Delta tables")
    parser.add_argument("--queries", required=True, type=pathlib.Path, help="folder of q01.sql .. q22.sql")
    parser.add_argument("--rounds", type=int, default=3, help="measured runs per query")
    parser.add_argument("--warmup", type=int, default=0, help="unmeasured runs per query first")
    parser.add_argument("--threads", type=int, default=0, help="DuckDB threads (default: DuckDB's, all cores)")
    parser.add_argument("--only", action="append", default=[], help="run only this query (qNN), repeatable")
    args = parser.parse_args()

    con = connect(args.threads)
    create_views(con, args.lake)
    version = con.execute(
        "SELECT extension_version FROM duckdb_extensions() WHERE extension_name = 'delta'"
    ).fetchone()
    threads = con.execute("SELECT current_setting('threads')").fetchone()[0]

    result = {}
    for name, sql in queries(args.queries).items():
        if args.only and name not in args.only:
            continue
        try:
            for _ in range(args.warmup):
                run_once(con, sql)
            samples, rows = [], None
            for _ in range(max(args.rounds, 1)):
                seconds, rows = run_once(con, sql)
                samples.append(seconds)
            result[name] = {"seconds": statistics.median(samples), "rounds": samples, "rows": rows}
            log(f"{name} {statistics.median(samples):.3f}s ({rows} rows)")
        except duckdb.Error as e:
            log(f"{name} FAILED: {e}")
            result[name] = None
    result["duckdb_version"] = duckdb.__version__
    result["delta_extension"] = version[0] if version else None
    result["threads"] = threads
    print(json.dumps(result))


if __name__ == "__main__":
    main()
