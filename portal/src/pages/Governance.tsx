import { useId, useState } from 'react';
import { api, fetchAll, unwrap, type Grant, type Mask, type RowFilter, type Subject } from '../api/client';
import { Async, Badge, EmptyState, useTitle } from '../components/common';
import { formatAgo, formatDateTime } from '../lib/format';
import { describeExemption, describeMask, describeTarget } from '../lib/policy';
import { useAsync } from '../lib/useAsync';
import { useSession } from '../session';

function describeSubject(s: Subject): string {
  switch (s.kind) {
    case 'principal':
      return `principal ${s.name}`;
    case 'group':
      return `group ${s.name}`;
    case 'attribute':
      return `${s.key} = ${s.value}`;
  }
}

function Gateways() {
  const gateways = useAsync(
    () => Promise.all([unwrap(api.GET('/api/v1/gateways')), unwrap(api.GET('/api/v1/version'))]),
    [],
  );
  return (
    <Async state={gateways} label="gateways">
      {([gs, version]) =>
        gs.length === 0 ? (
          <EmptyState>No gateway has reported to this catalog yet.</EmptyState>
        ) : (
          <>
            <p>
              The catalog is at version <strong>{version.version}</strong> (a bundle's version is the catalog version
              it was built from; changes that touch no policy make no new bundle).{' '}
              <button type="button" className="button small" onClick={gateways.reload}>
                Refresh
              </button>
            </p>
            <div className="table-scroll">
              <table className="list">
                <caption className="visually-hidden">Gateways and their policy bundles</caption>
                <thead>
                  <tr>
                    <th scope="col">Gateway</th>
                    <th scope="col">State</th>
                    <th scope="col" className="num">
                      Bundle version
                    </th>
                    <th scope="col">Bundle hash</th>
                    <th scope="col">Last report</th>
                    <th scope="col">Rejected</th>
                  </tr>
                </thead>
                <tbody>
                  {gs.map((g) => (
                    <tr key={g.name}>
                      <th scope="row">
                        <code>{g.name}</code>
                      </th>
                      <td>
                        <Badge tone={g.state === 'SYNCED' ? 'ok' : g.state === 'NACKED' ? 'bad' : 'warn'}>{g.state}</Badge>
                      </td>
                      <td className="num">
                        {g.version}
                      </td>
                      <td>
                        <code title={g.hash}>{g.hash ? `${g.hash.slice(0, 12)}…` : '—'}</code>
                      </td>
                      <td>
                        {formatAgo(g.reported_at)}
                        <span className="small-note">{formatDateTime(g.reported_at)}</span>
                      </td>
                      <td>
                        {g.rejected_version !== null && g.rejected_version !== undefined ? (
                          <>
                            version {g.rejected_version}
                            {g.error ? <span className="small-note">{g.error}</span> : null}
                          </>
                        ) : (
                          <span className="muted">—</span>
                        )}
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          </>
        )
      }
    </Async>
  );
}

function Policies() {
  const policies = useAsync(
    () =>
      Promise.all([
        fetchAll<Grant>((cursor) => api.GET('/api/v1/grants', { params: { query: { limit: 500, cursor } } })),
        fetchAll<Mask>((cursor) => api.GET('/api/v1/masks', { params: { query: { limit: 500, cursor } } })),
        fetchAll<RowFilter>((cursor) => api.GET('/api/v1/row-filters', { params: { query: { limit: 500, cursor } } })),
      ]),
    [],
  );
  return (
    <Async state={policies} label="policies">
      {([grants, masks, filters]) => (
        <>
          <h3 id="grants">Grants</h3>
          {grants.length === 0 ? (
            <EmptyState>No grant.</EmptyState>
          ) : (
            <div className="table-scroll">
              <table className="list">
                <caption className="visually-hidden">Grants</caption>
                <thead>
                  <tr>
                    <th scope="col">Grant</th>
                    <th scope="col">Who</th>
                    <th scope="col">What</th>
                    <th scope="col">Purposes</th>
                    <th scope="col">Expires</th>
                  </tr>
                </thead>
                <tbody>
                  {grants.map((g) => (
                    <tr key={g.spec.name}>
                      <th scope="row">
                        <code>{g.spec.name}</code>
                        <span className="small-note">
                          by {g.created_by}, revision {g.revision}
                        </span>
                      </th>
                      <td>{describeSubject(g.spec.subject)}</td>
                      <td>{describeTarget(g.spec.target)}</td>
                      <td>{g.spec.purposes?.length ? g.spec.purposes.join(', ') : <span className="muted">any</span>}</td>
                      <td>{g.spec.expires_at ? formatDateTime(g.spec.expires_at) : <span className="muted">never</span>}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
          <h3 id="masks">Column masks</h3>
          {masks.length === 0 ? (
            <EmptyState>No mask.</EmptyState>
          ) : (
            <div className="table-scroll">
              <table className="list">
                <caption className="visually-hidden">Column masks</caption>
                <thead>
                  <tr>
                    <th scope="col">Mask</th>
                    <th scope="col">Products</th>
                    <th scope="col">Columns</th>
                    <th scope="col">Reads as</th>
                    <th scope="col">Exempt</th>
                  </tr>
                </thead>
                <tbody>
                  {masks.map((m) => (
                    <tr key={m.spec.name}>
                      <th scope="row">
                        <code>{m.spec.name}</code>
                      </th>
                      <td>{describeTarget(m.spec.target)}</td>
                      <td>
                        {m.spec.columns.kind === 'column' ? (
                          <>
                            column <code>{m.spec.columns.column}</code>
                          </>
                        ) : (
                          <>
                            classified <code>{m.spec.columns.classification}</code>
                          </>
                        )}
                      </td>
                      <td>{describeMask(m.spec.function)}</td>
                      <td>{describeExemption(m.spec.exempt)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
          <h3 id="row-filters">Row filters</h3>
          {filters.length === 0 ? (
            <EmptyState>No row filter.</EmptyState>
          ) : (
            <div className="table-scroll">
              <table className="list">
                <caption className="visually-hidden">Row filters</caption>
                <thead>
                  <tr>
                    <th scope="col">Row filter</th>
                    <th scope="col">Product</th>
                    <th scope="col">Rows served</th>
                    <th scope="col">Exempt</th>
                  </tr>
                </thead>
                <tbody>
                  {filters.map((f) => (
                    <tr key={f.spec.name}>
                      <th scope="row">
                        <code>{f.spec.name}</code>
                      </th>
                      <td>
                        <code>
                          {f.spec.domain}.{f.spec.product}
                        </code>
                      </td>
                      <td>
                        <code className="wrap">{f.spec.expression}</code>
                      </td>
                      <td>{describeExemption(f.spec.exempt)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
        </>
      )}
    </Async>
  );
}

function ChangeLog() {
  const id = useId();
  const [after, setAfter] = useState(0);
  const [limit, setLimit] = useState(50);
  const [afterInput, setAfterInput] = useState('0');
  const page = useAsync(
    () => unwrap(api.GET('/api/v1/changes', { params: { query: { after, limit } } })),
    [after, limit],
  );
  const latest = async () => {
    const v = await unwrap(api.GET('/api/v1/version'));
    const start = Math.max(0, v.version - limit);
    setAfter(start);
    setAfterInput(String(start));
  };
  const go = (n: number) => {
    const v = Math.max(0, n);
    setAfter(v);
    setAfterInput(String(v));
  };
  return (
    <>
      <form
        className="toolbar"
        aria-label="Change log position"
        onSubmit={(e) => {
          e.preventDefault();
          go(Number(afterInput) || 0);
        }}
      >
        <div className="field inline">
          <label htmlFor={`${id}-after`}>After sequence</label>
          <input
            id={`${id}-after`}
            type="number"
            min={0}
            value={afterInput}
            onChange={(e) => setAfterInput(e.target.value)}
            className="narrow"
          />
        </div>
        <button type="submit" className="button small">
          Go
        </button>
        <div className="field inline">
          <label htmlFor={`${id}-limit`}>Entries per page</label>
          <select id={`${id}-limit`} value={limit} onChange={(e) => setLimit(Number(e.target.value))}>
            {[20, 50, 100, 500].map((n) => (
              <option key={n} value={n}>
                {n}
              </option>
            ))}
          </select>
        </div>
        <span className="spacer" />
        <button type="button" className="button small" onClick={() => go(0)} disabled={after === 0}>
          First
        </button>
        <button type="button" className="button small" onClick={() => go(after - limit)} disabled={after === 0}>
          Previous
        </button>
        <button
          type="button"
          className="button small"
          onClick={() => page.data?.next_cursor && go(Number(page.data.next_cursor))}
          disabled={!page.data?.next_cursor}
        >
          Next
        </button>
        <button type="button" className="button small" onClick={() => void latest()}>
          Latest
        </button>
      </form>
      <Async state={page} label="the change log">
        {(p) =>
          p.items.length === 0 ? (
            <EmptyState>No change after sequence {after}.</EmptyState>
          ) : (
            <div className="table-scroll">
              <table className="list compact">
                <caption className="visually-hidden">
                  Change log entries after sequence {after}
                </caption>
                <thead>
                  <tr>
                    <th scope="col" className="num">
                      Seq
                    </th>
                    <th scope="col">When</th>
                    <th scope="col">Who</th>
                    <th scope="col">What</th>
                    <th scope="col">Resource</th>
                  </tr>
                </thead>
                <tbody>
                  {p.items.map((c) => (
                    <tr key={c.seq}>
                      <th scope="row" className="num">
                        {c.seq}
                      </th>
                      <td>{formatDateTime(c.at)}</td>
                      <td>
                        <code>{c.actor}</code>
                      </td>
                      <td>
                        {c.action} {c.resource_type}
                      </td>
                      <td>
                        <details>
                          <summary>
                            <code>{c.resource}</code>
                          </summary>
                          <div className="diff">
                            <div>
                              <p className="small-note">Before</p>
                              <pre>{c.before === null || c.before === undefined ? '—' : JSON.stringify(c.before, null, 2)}</pre>
                            </div>
                            <div>
                              <p className="small-note">After</p>
                              <pre>{c.after === null || c.after === undefined ? '—' : JSON.stringify(c.after, null, 2)}</pre>
                            </div>
                          </div>
                        </details>
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )
        }
      </Async>
    </>
  );
}

export function Governance() {
  useTitle('Governance');
  const session = useSession();
  if (!session.admin) {
    return (
      <>
        <h1>Governance</h1>
        <p>Policies, gateways and the change log are for platform admins. You are signed in as {session.name}.</p>
      </>
    );
  }
  return (
    <>
      <div className="page-head">
        <h1>Governance</h1>
        <p className="lead">
          Policies written once in the catalog, the gateways enforcing them, and every change to the catalog.
        </p>
      </div>
      <nav className="toc" aria-label="On this page">
        <ul>
          <li><a href="#policies">Policies</a></li>
          <li><a href="#gateways">Gateways</a></li>
          <li><a href="#changes">Change log</a></li>
        </ul>
      </nav>
      <section id="policies" aria-labelledby="policies-h" className="panel">
        <h2 id="policies-h">Policies</h2>
        <Policies />
      </section>
      <section id="gateways" aria-labelledby="gateways-h" className="panel">
        <h2 id="gateways-h">Gateways</h2>
        <p className="help">
          SYNCED: serving the latest bundle; STALE: behind or silent; NACKED: it refused the last bundle and serves its
          last good one.
        </p>
        <Gateways />
      </section>
      <section id="changes" aria-labelledby="changes-h" className="panel">
        <h2 id="changes-h">Change log</h2>
        <ChangeLog />
      </section>
    </>
  );
}
