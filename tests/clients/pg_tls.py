"""psycopg 3 over TLS against Tessera's PostgreSQL-wire endpoint, across a
certificate reload:

    python pg_tls.py HOST PORT API_KEY CA_PEM NEW_CA_PEM

Connects with sslmode=verify-full against CA_PEM and holds the connection;
prints "ready" and waits for a line on stdin (meanwhile the server's
certificate is replaced by one NEW_CA_PEM verifies, and the server gets
SIGHUP); then prints one JSON line: whether the held connection still
answers, whether a new connection verifies against NEW_CA_PEM, and whether a
new connection against CA_PEM is refused for its certificate.
"""

import json
import sys
import time

import psycopg

host, port, key, ca, new_ca = sys.argv[1:6]


def connect(root):
    return psycopg.connect(
        host=host,
        port=port,
        dbname="tessera",
        user="cora",
        password=key,
        sslmode="verify-full",
        sslrootcert=root,
        connect_timeout=5,
    )


def nations(conn):
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM customers.nation")
        return cur.fetchone()[0]


held = connect(ca)
before = nations(held)
print("ready", flush=True)
sys.stdin.readline()

# New connections get the new certificate once the reload has landed.
deadline = time.monotonic() + 10
while True:
    try:
        fresh = connect(new_ca)
        break
    except psycopg.OperationalError:
        if time.monotonic() > deadline:
            raise
        time.sleep(0.1)
try:
    connect(ca).close()
    old_refused = "connected"
except psycopg.OperationalError as e:
    old_refused = "certificate verify failed" in str(e) or str(e)
print(
    json.dumps(
        {
            "before": before,
            "held": nations(held),
            "fresh": nations(fresh),
            "tls": fresh.pgconn.ssl_in_use,
            "old_ca_refused": old_refused,
        }
    ),
    flush=True,
)
