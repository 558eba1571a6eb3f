import { useId, useState } from 'react';
import { CodeBlock } from '../../components/common';
import { elideKey } from '../../lib/format';
import { useSession } from '../../session';

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** How to run a query from psql, a Flight SQL client or HTTP, with the key elided. */
export function ConnectSection({ sql }: { sql: string }) {
  const session = useSession();
  const id = useId();
  const [purpose, setPurpose] = useState(session.purposes[0] ?? '');
  const host = window.location.hostname || '127.0.0.1';
  const origin = window.location.origin;
  const oneLine = sql.replace(/\s+/g, ' ').trim();
  const exportKey = `export TESSERA_KEY=${elideKey(session.key)}   # your API key (its secret is not shown here)`;

  const psql = [
    exportKey,
    `PGPASSWORD="$TESSERA_KEY" psql "host=${host} port=5433 dbname=tessera user=${session.name}${
      purpose ? ` options='-c tessera.purpose=${purpose}'` : ''
    }" \\`,
    `  -c ${shellQuote(oneLine)}`,
  ].join('\n');

  const flight = [
    '# pip install adbc-driver-flightsql pyarrow',
    'import os',
    'import adbc_driver_flightsql.dbapi as flightsql',
    '',
    'conn = flightsql.connect(',
    `    "grpc://${host}:50051",`,
    '    db_kwargs={',
    '        "adbc.flight.sql.authorization_header": "Bearer " + os.environ["TESSERA_KEY"],',
    ...(purpose ? [`        "adbc.flight.sql.rpc.call_header.tessera-purpose": "${purpose}",`] : []),
    '    },',
    ')',
    'with conn.cursor() as cur:',
    `    cur.execute(${JSON.stringify(oneLine)})`,
    '    print(cur.fetch_arrow_table())',
  ].join('\n');

  const http = [
    exportKey,
    `curl -s ${origin}/api/v1/query \\`,
    `  -H "Authorization: Bearer $TESSERA_KEY" \\`,
    ...(purpose ? [`  -H 'Tessera-Purpose: ${purpose}' \\`] : []),
    `  -H 'Content-Type: application/json' -H 'Accept: text/csv' \\`,
    `  -d ${shellQuote(JSON.stringify({ sql: oneLine }))}`,
  ].join('\n');

  return (
    <>
      {session.purposes.length ? (
        <div className="field inline">
          <label htmlFor={`${id}-purpose`}>Purpose in the snippets</label>
          <select id={`${id}-purpose`} value={purpose} onChange={(e) => setPurpose(e.target.value)}>
            <option value="">none</option>
            {session.purposes.map((p) => (
              <option key={p} value={p}>
                {p}
              </option>
            ))}
          </select>
        </div>
      ) : null}
      <p className="help">
        The ports are the platform's defaults (PostgreSQL wire 5433, Flight SQL 50051); your platform team may have
        moved them. Your key stays out of the snippets: set <code>TESSERA_KEY</code> yourself.
      </p>
      <CodeBlock label="psql (PostgreSQL wire)" code={psql} />
      <CodeBlock label="Flight SQL (Python, ADBC)" code={flight} />
      <CodeBlock label="HTTP (curl)" code={http} />
    </>
  );
}
