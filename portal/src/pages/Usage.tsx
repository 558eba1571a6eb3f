import { useId, useMemo, useState } from 'react';
import { Link, useSearchParams } from 'react-router';
import { api, fetchAll, unwrap, type Product, type UsageRecord } from '../api/client';
import { BarChart } from '../components/BarChart';
import { Async, Badge, EmptyState, ProblemView, useTitle } from '../components/common';
import { formatAgo, formatDateTime, formatNumber } from '../lib/format';
import { useAsync } from '../lib/useAsync';
import { useSession } from '../session';

const PAGE = 500;

interface Pages {
  items: UsageRecord[];
  next: string | null;
}

function useUsage(domain: string, product: string) {
  const [more, setMore] = useState<Pages | null>(null);
  const [error, setError] = useState<unknown>(undefined);
  const [loadingMore, setLoadingMore] = useState(false);
  const first = useAsync(async () => {
    setMore(null);
    setError(undefined);
    if (!domain || !product) return null;
    const page = await unwrap(
      api.GET('/api/v1/domains/{domain}/products/{product}/usage', {
        params: { path: { domain, product }, query: { limit: PAGE } },
      }),
    );
    return { items: page.items, next: page.next_cursor ?? null } as Pages;
  }, [domain, product]);
  const current = more ?? first.data ?? null;
  const loadMore = async () => {
    if (!current?.next) return;
    setLoadingMore(true);
    try {
      const page = await unwrap(
        api.GET('/api/v1/domains/{domain}/products/{product}/usage', {
          params: { path: { domain, product }, query: { limit: PAGE, cursor: current.next } },
        }),
      );
      setMore({ items: [...current.items, ...page.items], next: page.next_cursor ?? null });
    } catch (e) {
      setError(e);
    } finally {
      setLoadingMore(false);
    }
  };
  return { first, current, loadMore, loadingMore, error };
}

interface ByPrincipal {
  principal: string;
  queries: number;
  rows: number;
  failed: number;
  purposes: Set<string>;
  last: string;
}

function aggregate(records: UsageRecord[]) {
  const principals = new Map<string, ByPrincipal>();
  const purposes = new Map<string, number>();
  let failed = 0;
  let rows = 0;
  for (const { record: r } of records) {
    const p = principals.get(r.principal) ?? { principal: r.principal, queries: 0, rows: 0, failed: 0, purposes: new Set(), last: r.at };
    p.queries += 1;
    p.rows += r.rows;
    if (r.outcome !== 'ok') {
      p.failed += 1;
      failed += 1;
    }
    const purpose = r.purpose ?? (r.refused_purpose ? `${r.refused_purpose} (refused)` : 'none');
    p.purposes.add(purpose);
    if (r.at > p.last) p.last = r.at;
    principals.set(r.principal, p);
    purposes.set(purpose, (purposes.get(purpose) ?? 0) + 1);
    rows += r.rows;
  }
  return {
    principals: [...principals.values()].sort((a, b) => b.queries - a.queries),
    purposes: [...purposes.entries()].sort((a, b) => b[1] - a[1]),
    failed,
    rows,
  };
}

function Report({ records }: { records: UsageRecord[] }) {
  const a = useMemo(() => aggregate(records), [records]);
  if (!records.length) {
    return <EmptyState>No query has read this product yet (audit records reach the catalog in batches, within seconds).</EmptyState>;
  }
  const oldest = records[records.length - 1]!.record.at;
  return (
    <>
      <ul className="stats" aria-label="Usage at a glance">
        <li>
          <span className="stat-value">{formatNumber(records.length)}</span> <span className="stat-label">queries</span>
        </li>
        <li>
          <span className="stat-value">{formatNumber(a.principals.length)}</span> <span className="stat-label">principals</span>
        </li>
        <li>
          <span className="stat-value">{formatNumber(a.rows)}</span> <span className="stat-label">rows served</span>
        </li>
        <li className={a.failed ? 'stat-failing' : undefined}>
          <span className="stat-value">{formatNumber(a.failed)}</span> <span className="stat-label">failed</span>
        </li>
      </ul>
      <p className="help">Since {formatDateTime(oldest)}.</p>
      <div className="columns">
        <section aria-labelledby="by-principal-h">
          <h3 id="by-principal-h">Who queries it</h3>
          <div className="table-scroll">
            <table className="list compact">
              <caption className="visually-hidden">Queries by principal</caption>
              <thead>
                <tr>
                  <th scope="col">Principal</th>
                  <th scope="col" className="num">
                    Queries
                  </th>
                  <th scope="col" className="num">
                    Rows
                  </th>
                  <th scope="col">Purposes</th>
                  <th scope="col">Last</th>
                </tr>
              </thead>
              <tbody>
                {a.principals.map((p) => (
                  <tr key={p.principal}>
                    <th scope="row">
                      <code>{p.principal}</code>
                    </th>
                    <td className="num">
                      {formatNumber(p.queries)}
                      {p.failed ? <span className="small-note">{p.failed} failed</span> : null}
                    </td>
                    <td className="num">{formatNumber(p.rows)}</td>
                    <td>{[...p.purposes].join(', ')}</td>
                    <td>{formatAgo(p.last)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </section>
        <section aria-labelledby="by-purpose-h">
          <h3 id="by-purpose-h">With which purposes</h3>
          <BarChart
            title="Queries by purpose"
            valueName="queries"
            bars={a.purposes.map(([label, value]) => ({ label, value }))}
            width={520}
          />
          <BarChart
            title="Queries by principal"
            valueName="queries"
            bars={a.principals.map((p) => ({ label: p.principal, value: p.queries }))}
            width={520}
          />
        </section>
      </div>
      <h3>Recent queries</h3>
      <div className="table-scroll">
        <table className="list compact">
          <caption className="visually-hidden">Recent queries, newest first</caption>
          <thead>
            <tr>
              <th scope="col">When</th>
              <th scope="col">Principal</th>
              <th scope="col">Purpose</th>
              <th scope="col">Protocol</th>
              <th scope="col" className="num">
                Rows
              </th>
              <th scope="col" className="num">
                ms
              </th>
              <th scope="col">Outcome</th>
              <th scope="col">Policies applied</th>
              <th scope="col">SQL</th>
            </tr>
          </thead>
          <tbody>
            {records.slice(0, 100).map(({ id, record: r }) => (
              <tr key={id}>
                <th scope="row">{formatDateTime(r.at)}</th>
                <td>
                  <code>{r.principal}</code>
                </td>
                <td>
                  {r.purpose ?? (r.refused_purpose ? <span className="muted">{r.refused_purpose} (refused)</span> : <span className="muted">none</span>)}
                </td>
                <td>{r.protocol}</td>
                <td className="num">{formatNumber(r.rows)}</td>
                <td className="num">{formatNumber(r.duration_ms)}</td>
                <td>{r.outcome === 'ok' ? <Badge tone="ok">ok</Badge> : <Badge tone="bad">{r.outcome}</Badge>}</td>
                <td>
                  {[...(r.masks ?? []), ...(r.filters ?? [])].length ? (
                    <ul className="plain small">
                      {[...(r.masks ?? []), ...(r.filters ?? [])].map((m) => (
                        <li key={m}>
                          <code>{m}</code>
                        </li>
                      ))}
                    </ul>
                  ) : (
                    <span className="muted">none</span>
                  )}
                </td>
                <td>
                  <details>
                    <summary>{r.sql.length > 40 ? `${r.sql.slice(0, 40)}…` : r.sql}</summary>
                    <pre className="wrap">{r.sql}</pre>
                    {r.error ? <p className="small-note">{r.error}</p> : null}
                  </details>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {records.length > 100 ? <p className="help">The 100 most recent of {formatNumber(records.length)} queries are listed.</p> : null}
    </>
  );
}

export function Usage() {
  useTitle('Usage');
  const session = useSession();
  const id = useId();
  const [params, setParams] = useSearchParams();
  const products = useAsync(
    () => fetchAll<Product>((cursor) => api.GET('/api/v1/products', { params: { query: { limit: 500, cursor } } })),
    [],
  );
  const mine = (products.data ?? []).filter((p) => session.admin || session.owns(p));
  const selected = params.get('product') ?? (mine[0] ? `${mine[0].domain}.${mine[0].name}` : '');
  const [domain = '', product = ''] = selected.split('.');
  const usage = useUsage(domain, product);

  return (
    <>
      <div className="page-head">
        <h1>Usage</h1>
        <p className="lead">Who queries your products, how often, and with which purposes, from the gateways' audit.</p>
      </div>
      <Async state={products} label="products">
        {() =>
          mine.length === 0 ? (
            <EmptyState>
              You own no product. Usage is shown to a product's owners and to platform admins.
            </EmptyState>
          ) : (
            <>
              <div className="field inline section-gap">
                <label htmlFor={`${id}-product`}>Product</label>
                <select
                  id={`${id}-product`}
                  value={selected}
                  onChange={(e) => setParams(new URLSearchParams({ product: e.target.value }), { replace: true })}
                >
                  {mine.map((p) => (
                    <option key={`${p.domain}.${p.name}`} value={`${p.domain}.${p.name}`}>
                      {p.domain}.{p.name}
                    </option>
                  ))}
                </select>{' '}
                <Link to={`/products/${domain}/${product}`}>Open the product</Link>
              </div>
              <Async state={usage.first} label="usage">
                {() =>
                  usage.current ? (
                    <>
                      <Report records={usage.current.items} />
                      {usage.error !== undefined ? <ProblemView error={usage.error} /> : null}
                      {usage.current.next ? (
                        <button type="button" className="button" onClick={() => void usage.loadMore()} disabled={usage.loadingMore}>
                          {usage.loadingMore ? 'Loading…' : 'Load older queries'}
                        </button>
                      ) : null}
                    </>
                  ) : null
                }
              </Async>
            </>
          )
        }
      </Async>
    </>
  );
}
