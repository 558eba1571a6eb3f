"""Real PostgreSQL clients against Tessera's PostgreSQL-wire endpoint.

Usage: pg_clients.py HOST PORT API_KEY

Expects the product customers.nation (TPC-H nation) to be queryable. Exits
non-zero, naming the failed check, when a client does not get what a
PostgreSQL user would expect.
"""

import sys

import psycopg
import sqlalchemy
from psycopg import errors

host, port, key = sys.argv[1], int(sys.argv[2]), sys.argv[3]
conninfo = dict(host=host, port=port, dbname="tessera", user="analyst", password=key)
checks = []


def check(name, got, expected):
    ok = got == expected
    checks.append((name, ok))
    print(f"{'ok ' if ok else 'FAIL'} {name}: {got!r}" + ("" if ok else f" (expected {expected!r})"))


# psycopg 3: server-side parameters (extended protocol), prepared statements,
# typed results and SQLSTATE-typed errors.
with psycopg.connect(**conninfo, autocommit=True) as conn:
    with conn.cursor() as cur:
        cur.execute("SELECT n_name FROM customers.nation WHERE n_nationkey = %s", (7,))
        check("psycopg parameter", cur.fetchall(), [("GERMANY",)])
        for _ in range(3):
            cur.execute("SELECT count(*) FROM customers.nation WHERE n_regionkey = %s", (3,), prepare=True)
        check("psycopg prepared statement", cur.fetchone(), (5,))
        cur.execute("SELECT n_nationkey, n_name FROM customers.nation ORDER BY n_nationkey LIMIT 2")
        check("psycopg typed rows", cur.fetchall(), [(0, "ALGERIA"), (1, "ARGENTINA")])
        for sql, error in [
            ("SELECT 1/0", errors.DivisionByZero),
            ("INSERT INTO customers.nation VALUES (1)", errors.InsufficientPrivilege),
            ("SELECT * FROM customers.nope", errors.UndefinedTable),
        ]:
            try:
                cur.execute(sql)
                check(f"psycopg error for {sql}", "no error", error.__name__)
            except error:
                check(f"psycopg error for {sql}", error.__name__, error.__name__)
            except psycopg.Error as e:
                check(f"psycopg error for {sql}", f"{type(e).__name__} {e.sqlstate}", error.__name__)
        cur.execute("SELECT n_name FROM customers.nation WHERE n_nationkey = 0")
        check("psycopg after errors", cur.fetchall(), [("ALGERIA",)])

# SQLAlchemy's inspector: what ORMs and BI tools read of the catalog.
engine = sqlalchemy.create_engine(
    f"postgresql+psycopg://analyst:{key}@{host}:{port}/tessera", poolclass=sqlalchemy.pool.NullPool
)
inspector = sqlalchemy.inspect(engine)
check("sqlalchemy schemas include customers", "customers" in inspector.get_schema_names(), True)
check("sqlalchemy tables", inspector.get_table_names(schema="customers"), ["nation"])
columns = [c["name"] for c in inspector.get_columns("nation", schema="customers")]
check("sqlalchemy columns", columns, ["n_nationkey", "n_name", "n_regionkey", "n_comment"])
with engine.connect() as conn:
    rows = conn.execute(
        sqlalchemy.text("SELECT n_name FROM customers.nation WHERE n_nationkey = :k"), {"k": 7}
    ).all()
    check("sqlalchemy query", [tuple(r) for r in rows], [("GERMANY",)])

failed = [name for name, ok in checks if not ok]
if failed:
    print(f"{len(failed)} of {len(checks)} checks failed: {failed}", file=sys.stderr)
    sys.exit(1)
print(f"all {len(checks)} client checks passed")
