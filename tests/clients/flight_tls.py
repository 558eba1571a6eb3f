"""Apache Arrow's ADBC Flight SQL driver over TLS against Tessera's Flight SQL
endpoint, as an analyst would connect:

    python flight_tls.py GRPC_TLS_URI API_KEY CA_PEM

Verifies the server against CA_PEM and counts sales.lineitem for the
analytics purpose (60,175 rows at scale 0.01); then checks that without the
CA the handshake is refused. Exits 0 when both hold.
"""

import sys
import warnings

import adbc_driver_flightsql.dbapi as flight_sql
from adbc_driver_flightsql import DatabaseOptions

uri, key, ca = sys.argv[1:4]
warnings.simplefilter("ignore")  # "Cannot disable autocommit": Flight SQL has no transactions here.

options = {
    "adbc.flight.sql.authorization_header": f"Bearer {key}",
    "adbc.flight.sql.rpc.call_header.tessera-purpose": "analytics",
}
with open(ca) as f:
    verified = dict(options, **{DatabaseOptions.TLS_ROOT_CERTS.value: f.read()})
with flight_sql.connect(uri, db_kwargs=verified) as conn, conn.cursor() as cur:
    cur.execute("SELECT count(*) AS n FROM sales.lineitem")
    (count,) = cur.fetchone()
if count != 60175:
    sys.exit(f"expected 60175 line items, got {count}")

try:
    with flight_sql.connect(uri, db_kwargs=options) as conn, conn.cursor() as cur:
        cur.execute("SELECT 1")
        sys.exit("answered without verifying the server's certificate")
except flight_sql.Error as e:
    if "certificate" not in str(e):
        sys.exit(f"refused, but not for the certificate: {e}")
print("ok")
