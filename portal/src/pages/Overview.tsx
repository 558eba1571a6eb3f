import { useEffect, useMemo, useState } from 'react';
import { Link, useSearchParams } from 'react-router';
import { api, fetchAll, type Domain, type Health, type Product, type ProductStatus } from '../api/client';
import { Async, Badge, EmptyState, HealthBadge, StatusBadge, useTitle } from '../components/common';
import { pluralize } from '../lib/format';
import { useAsync, useDebounced } from '../lib/useAsync';
import { useSession } from '../session';

const STATUSES: ProductStatus[] = ['draft', 'published', 'deprecated', 'retired'];
const HEALTHS: Health[] = ['healthy', 'degraded', 'failing', 'drifted', 'unknown'];

function listProducts(filters: { q?: string; domain?: string; tag?: string; status?: ProductStatus }) {
  return fetchAll<Product>((cursor) =>
    api.GET('/api/v1/products', { params: { query: { ...filters, limit: 500, cursor } } }),
  );
}

function Summary({ domains, products }: { domains: Domain[]; products: Product[] }) {
  const count = (h: Health) => products.filter((p) => p.health === h).length;
  return (
    <ul className="stats" aria-label="The mesh at a glance">
      <li>
        <span className="stat-value">{domains.length}</span> <span className="stat-label">domains</span>
      </li>
      <li>
        <span className="stat-value">{products.length}</span> <span className="stat-label">products</span>
      </li>
      {HEALTHS.map((h) => (
        <li key={h} className={`stat-${h}`}>
          <span className="stat-value">{count(h)}</span> <span className="stat-label">{h}</span>
        </li>
      ))}
    </ul>
  );
}

function ProductTable({ products, caption }: { products: Product[]; caption: string }) {
  const session = useSession();
  return (
    <div className="table-scroll">
      <table className="list products">
        <caption className="visually-hidden">{caption}</caption>
        <colgroup>
          <col className="c-product" />
          <col className="c-status" />
          <col className="c-health" />
          <col className="c-contract" />
          <col className="c-owners" />
          <col />
        </colgroup>
        <thead>
          <tr>
            <th scope="col">Product</th>
            <th scope="col">Status</th>
            <th scope="col">Health</th>
            <th scope="col">Contract</th>
            <th scope="col">Owners</th>
            <th scope="col">Tags</th>
          </tr>
        </thead>
        <tbody>
          {products.map((p) => (
            <tr key={`${p.domain}.${p.name}`}>
              <th scope="row">
                <Link to={`/products/${p.domain}/${p.name}`} className="product-link">
                  {p.title || p.name}
                </Link>
                <span className="sql-name">
                  <code>
                    {p.domain}.{p.name}
                  </code>
                  {p.visibility === 'restricted' ? <Badge tone="warn">restricted</Badge> : null}
                  {session.owns(p) ? <Badge tone="accent">yours</Badge> : null}
                </span>
                {p.description ? <span className="product-desc">{p.description}</span> : null}
              </th>
              <td>
                <StatusBadge status={p.status} />
                {p.sunset_date ? <span className="small-note">sunset {p.sunset_date}</span> : null}
              </td>
              <td>
                <HealthBadge health={p.health} />
              </td>
              <td>{p.latest_contract_version ? <code>v{p.latest_contract_version}</code> : <span className="muted">none</span>}</td>
              <td>
                <code>{p.owner_team}</code>
              </td>
              <td>
                <ul className="tags" aria-label="Tags">
                  {p.tags.map((t) => (
                    <li key={t}>{t}</li>
                  ))}
                </ul>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

export function Overview() {
  useTitle('Mesh overview');
  const session = useSession();
  const [params, setParams] = useSearchParams();
  const domain = params.get('domain') ?? '';
  const tag = params.get('tag') ?? '';
  const status = (params.get('status') ?? '') as ProductStatus | '';
  const health = (params.get('health') ?? '') as Health | '';
  const [q, setQ] = useState(params.get('q') ?? '');
  const debouncedQ = useDebounced(q.trim(), 250);

  const set = (name: string, value: string) => {
    setParams(
      (current) => {
        const next = new URLSearchParams(current);
        if (value) next.set(name, value);
        else next.delete(name);
        return next;
      },
      { replace: true },
    );
  };
  useEffect(() => {
    if ((params.get('q') ?? '') !== debouncedQ) set('q', debouncedQ);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [debouncedQ]);

  const domains = useAsync(() => fetchAll<Domain>((cursor) => api.GET('/api/v1/domains', { params: { query: { limit: 500, cursor } } })), []);
  const all = useAsync(() => listProducts({}), []);
  const filtering = !!(debouncedQ || domain || tag || status);
  const filtered = useAsync(
    () =>
      filtering
        ? listProducts({ q: debouncedQ || undefined, domain: domain || undefined, tag: tag || undefined, status: status || undefined })
        : Promise.resolve(null),
    [debouncedQ, domain, tag, status],
  );

  const tags = useMemo(() => [...new Set((all.data ?? []).flatMap((p) => p.tags))].sort(), [all.data]);
  const base = filtering ? filtered.data : all.data;
  const shown = useMemo(
    () => (base ? base.filter((p) => !health || p.health === health) : undefined),
    [base, health],
  );
  const anyFilter = filtering || !!health;

  return (
    <>
      <div className="page-head">
        <h1>Mesh overview</h1>
        <p className="lead">Every domain of the mesh, its data products, their owners and their health.</p>
      </div>
      {domains.data && all.data ? <Summary domains={domains.data} products={all.data} /> : null}

      <form className="filters" role="search" aria-label="Products" onSubmit={(e) => e.preventDefault()}>
        <div className="field grow">
          <label htmlFor="f-q">Search</label>
          <input
            id="f-q"
            type="search"
            value={q}
            placeholder="Name, title, description…"
            onChange={(e) => setQ(e.target.value)}
          />
        </div>
        <div className="field">
          <label htmlFor="f-domain">Domain</label>
          <select id="f-domain" value={domain} onChange={(e) => set('domain', e.target.value)}>
            <option value="">All domains</option>
            {(domains.data ?? []).map((d) => (
              <option key={d.name} value={d.name}>
                {d.title || d.name}
              </option>
            ))}
          </select>
        </div>
        <div className="field">
          <label htmlFor="f-tag">Tag</label>
          <select id="f-tag" value={tag} onChange={(e) => set('tag', e.target.value)}>
            <option value="">All tags</option>
            {tags.map((t) => (
              <option key={t} value={t}>
                {t}
              </option>
            ))}
          </select>
        </div>
        <div className="field">
          <label htmlFor="f-status">Status</label>
          <select id="f-status" value={status} onChange={(e) => set('status', e.target.value)}>
            <option value="">Any status</option>
            {STATUSES.map((s) => (
              <option key={s} value={s}>
                {s}
              </option>
            ))}
          </select>
        </div>
        <div className="field">
          <label htmlFor="f-health">Health</label>
          <select id="f-health" value={health} onChange={(e) => set('health', e.target.value)}>
            <option value="">Any health</option>
            {HEALTHS.map((h) => (
              <option key={h} value={h}>
                {h}
              </option>
            ))}
          </select>
        </div>
        {anyFilter ? (
          <button
            type="button"
            className="button"
            onClick={() => {
              setQ('');
              setParams(new URLSearchParams(), { replace: true });
            }}
          >
            Clear filters
          </button>
        ) : null}
      </form>

      <p className="result-count" role="status" aria-live="polite">
        {shown ? `${pluralize(shown.length, 'product')}${anyFilter ? ' match' : ''}` : ''}
      </p>

      <Async state={domains} label="domains">
        {(ds) =>
          filtered.error !== undefined || all.error !== undefined ? (
            <Async state={filtered.error !== undefined ? filtered : all} label="products">
              {() => null}
            </Async>
          ) : !shown ? (
            <Async state={all} label="products">
              {() => null}
            </Async>
          ) : shown.length === 0 ? (
            <EmptyState>No product matches these filters.</EmptyState>
          ) : (
            ds
              .map((d) => ({ d, products: shown.filter((p) => p.domain === d.name) }))
              .filter(({ products }) => products.length > 0 || !anyFilter)
              .map(({ d, products }) => (
                <section key={d.name} className="domain" aria-labelledby={`domain-${d.name}`}>
                  <div className="domain-head">
                    <h2 id={`domain-${d.name}`}>
                      {d.title || d.name} <code className="domain-name">{d.name}</code>
                    </h2>
                    <p className="domain-meta">
                      Owned by <code>{d.owner_team}</code>
                      {session.ownedDomains.includes(d.name) ? <Badge tone="accent">you own this domain</Badge> : null}
                      {' · '}
                      {pluralize(products.length, 'product')}
                    </p>
                    {d.description ? <p className="domain-desc">{d.description}</p> : null}
                  </div>
                  {products.length ? (
                    <ProductTable products={products} caption={`Products of the ${d.title || d.name} domain`} />
                  ) : (
                    <EmptyState>No product that you may see yet.</EmptyState>
                  )}
                </section>
              ))
          )
        }
      </Async>
    </>
  );
}
