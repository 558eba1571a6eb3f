import { Link, useParams } from 'react-router';
import {
  api,
  ApiError,
  fetchAll,
  unwrap,
  type ContractVersionSummary,
  type Mask,
  type Product,
  type ProductStatus,
  type RowFilter,
} from '../api/client';
import { Async, Badge, CodeBlock, EmptyState, HealthBadge, Loading, ProblemView, StatusBadge, useTitle } from '../components/common';
import { LineageGraph } from '../components/LineageGraph';
import { RequestAccessForm } from '../components/RequestAccessForm';
import { parseContract } from '../lib/contract';
import { formatDate, formatDateTime } from '../lib/format';
import { useAsync } from '../lib/useAsync';
import { useSession, type Session } from '../session';
import { ChangesSection } from './product/Changes';
import { ConnectSection } from './product/Connect';
import { QualitySection } from './product/Quality';
import { SchemaSection, type Policies } from './product/Schema';

const LIFECYCLE: ProductStatus[] = ['draft', 'published', 'deprecated', 'retired'];

/** The SQL name of one major version: the current major is `domain.product`. */
export function sqlName(p: Product, major: number): string {
  const current = currentMajor(p);
  return major === current ? `${p.domain}.${p.name}` : `${p.domain}.${p.name}__v${major}`;
}

export function currentMajor(p: Product): number {
  const fromContract = p.latest_contract_version ? Number(p.latest_contract_version.split('.')[0]) : NaN;
  if (!Number.isNaN(fromContract)) return fromContract;
  return Math.max(1, ...p.output_ports.map((o) => o.major_version));
}

async function loadPolicies(session: Session, product: Product): Promise<Policies | null> {
  // Only admins may list every mask; a domain listing misses mesh-wide masks, so
  // for everyone else the page says "may be masked" (owners see everything anyway).
  if (!session.admin) return null;
  const [masks, filters] = await Promise.all([
    fetchAll<Mask>((cursor) => api.GET('/api/v1/masks', { params: { query: { limit: 500, cursor } } })),
    fetchAll<RowFilter>((cursor) =>
      api.GET('/api/v1/row-filters', { params: { query: { domain: product.domain, limit: 500, cursor } } }),
    ),
  ]);
  return { masks: masks.map((m) => m.spec), filters };
}

function Lifecycle({ product }: { product: Product }) {
  const at = LIFECYCLE.indexOf(product.status);
  return (
    <ol className="lifecycle" aria-label="Lifecycle">
      {LIFECYCLE.map((s, i) => (
        <li key={s} className={i < at ? 'done' : i === at ? 'current' : undefined} aria-current={i === at ? 'step' : undefined}>
          {s}
          {s === 'deprecated' && product.sunset_date ? <span className="small-note">sunset {formatDate(product.sunset_date)}</span> : null}
        </li>
      ))}
    </ol>
  );
}

function sampleSql(p: Product, columns: string[]): string {
  const cols = columns.length ? columns.slice(0, 6).join(', ') : '*';
  return `SELECT ${cols}\nFROM ${sqlName(p, currentMajor(p))}\nLIMIT 100`;
}

export function ProductPage() {
  const { domain = '', product: name = '' } = useParams();
  const session = useSession();
  const product = useAsync(
    () => unwrap(api.GET('/api/v1/domains/{domain}/products/{product}', { params: { path: { domain, product: name } } })),
    [domain, name],
  );
  useTitle(product.data ? product.data.title || `${domain}.${name}` : `${domain}.${name}`);

  if (product.error !== undefined) {
    return (
      <>
        <h1>
          <code>
            {domain}.{name}
          </code>
        </h1>
        {product.error instanceof ApiError && product.error.status === 404 ? (
          <p>No such product, or none that you may see.</p>
        ) : (
          <ProblemView error={product.error} title="Could not load the product" />
        )}
        <p>
          <Link to="/">Back to the mesh overview</Link>
        </p>
      </>
    );
  }
  if (!product.data) return <Loading label="Loading the product…" />;
  return <ProductView product={product.data} session={session} />;
}

function ProductView({ product: p, session }: { product: Product; session: Session }) {
  const path = { domain: p.domain, product: p.name };
  const owner = session.owns(p);
  const domainInfo = useAsync(() => unwrap(api.GET('/api/v1/domains/{domain}', { params: { path: { domain: p.domain } } })), [p.domain]);
  const team = useAsync(
    () => unwrap(api.GET('/api/v1/teams/{team}', { params: { path: { team: p.owner_team } } })).catch(() => null),
    [p.owner_team],
  );
  const versions = useAsync(
    () =>
      fetchAll<ContractVersionSummary>((cursor) =>
        api.GET('/api/v1/domains/{domain}/products/{product}/contracts', { params: { path, query: { limit: 500, cursor } } }),
      ),
    [p.domain, p.name],
  );
  const latest = useAsync(
    () =>
      p.latest_contract_version
        ? unwrap(
            api.GET('/api/v1/domains/{domain}/products/{product}/contracts/{version}', {
              params: { path: { ...path, version: p.latest_contract_version } },
            }),
          ).then((c) => parseContract(c.document))
        : Promise.resolve(null),
    [p.domain, p.name, p.latest_contract_version],
  );
  const quality = useAsync(
    () => unwrap(api.GET('/api/v1/domains/{domain}/products/{product}/quality', { params: { path, query: { limit: 20 } } })),
    [p.domain, p.name],
  );
  const lineage = useAsync(
    () => unwrap(api.GET('/api/v1/domains/{domain}/products/{product}/lineage', { params: { path } })),
    [p.domain, p.name],
  );
  const policies = useAsync(() => loadPolicies(session, p), [p.domain, p.name, session.key]);

  const contract = latest.data ?? null;
  const sql = sampleSql(p, contract?.columns.filter((c) => c.depth === 0).map((c) => c.name) ?? []);
  const id = `${p.domain}.${p.name}`;
  const upstream = p.input_ports;
  const downstream = (lineage.data?.edges ?? []).filter((e) => e.from === id).map((e) => e.to);

  return (
    <article className="product">
      <header className="page-head">
        <p className="breadcrumb">
          <Link to="/">Mesh</Link> <span aria-hidden="true">/</span>{' '}
          <Link to={`/?domain=${encodeURIComponent(p.domain)}`}>{domainInfo.data?.title ?? p.domain}</Link>
        </p>
        <h1>{p.title || p.name}</h1>
        <p className="product-badges">
          <code className="sql-name-big">{sqlName(p, currentMajor(p))}</code>
          <StatusBadge status={p.status} />
          <HealthBadge health={p.health} />
          <Badge tone={p.visibility === 'restricted' ? 'warn' : 'neutral'}>{p.visibility}</Badge>
          {owner ? <Badge tone="accent">you own this product</Badge> : null}
        </p>
        {p.description ? <p className="lead">{p.description}</p> : null}
        <p className="actions">
          <Link className="button primary" to={`/console?sql=${encodeURIComponent(sql)}`}>
            Query in the SQL console
          </Link>
          {!owner ? (
            <a className="button" href="#access">
              Request access
            </a>
          ) : (
            <Link className="button" to="/usage">
              See its usage
            </Link>
          )}
        </p>
      </header>

      <nav className="toc" aria-label="On this page">
        <ul>
          <li><a href="#about">About</a></li>
          <li><a href="#contract">Contract</a></li>
          <li><a href="#quality">Quality</a></li>
          <li><a href="#changes">Changes</a></li>
          <li><a href="#lineage">Lineage</a></li>
          <li><a href="#query">Query</a></li>
          <li><a href="#connect">Connect</a></li>
          <li><a href="#access">Access</a></li>
        </ul>
      </nav>

      <section id="about" aria-labelledby="about-h" className="panel">
        <h2 id="about-h">About</h2>
        <div className="columns">
          <div>
            {contract?.purpose ? (
              <>
                <h3>Purpose</h3>
                <p>{contract.purpose}</p>
              </>
            ) : null}
            {contract?.usage ? (
              <>
                <h3>Usage</h3>
                <p>{contract.usage}</p>
              </>
            ) : null}
            {contract?.limitations ? (
              <>
                <h3>Limitations</h3>
                <p>{contract.limitations}</p>
              </>
            ) : null}
            <h3>Lifecycle</h3>
            <Lifecycle product={p} />
            <dl className="facts">
              <dt>Contract</dt>
              <dd>{p.latest_contract_version ? <code>v{p.latest_contract_version}</code> : 'none yet'}</dd>
              <dt>Compatibility</dt>
              <dd>
                <code>{p.compatibility}</code>
                <span className="small-note">
                  {p.compatibility === 'strict'
                    ? 'any change of a major version must keep every consumer working, warnings included'
                    : p.compatibility === 'consumers'
                      ? 'breaking changes need a new major version'
                      : 'no compatibility check'}
                </span>
              </dd>
              <dt>Output ports</dt>
              <dd>
                <ul className="plain">
                  {p.output_ports
                    .slice()
                    .sort((a, b) => b.major_version - a.major_version)
                    .map((o) => (
                      <li key={o.major_version}>
                        v{o.major_version}: <code>{sqlName(p, o.major_version)}</code>
                        <span className="small-note">{o.location}</span>
                      </li>
                    ))}
                </ul>
              </dd>
              <dt>Input ports</dt>
              <dd>
                {upstream.length ? (
                  <ul className="plain">
                    {upstream.map((u) => {
                      const [d, n] = u.split('.');
                      return (
                        <li key={u}>
                          <Link to={`/products/${d}/${n}`}>
                            <code>{u}</code>
                          </Link>
                        </li>
                      );
                    })}
                  </ul>
                ) : (
                  'none (a source product)'
                )}
              </dd>
              <dt>Registered</dt>
              <dd>{formatDateTime(p.created_at)}</dd>
              <dt>Updated</dt>
              <dd>{formatDateTime(p.updated_at)}</dd>
            </dl>
          </div>
          <div>
            <h3>Owners</h3>
            <dl className="facts">
              <dt>Owning team</dt>
              <dd>
                <code>{p.owner_team}</code>
                {team.data?.title ? <span className="small-note">{team.data.title}</span> : null}
              </dd>
              <dt>Domain team</dt>
              <dd>{domainInfo.data ? <code>{domainInfo.data.owner_team}</code> : '…'}</dd>
              <dt>Members</dt>
              <dd>
                {team.data?.members.length ? (
                  <ul className="plain">
                    {team.data.members.map((m) => {
                      const role = contract?.members.find((x) => x.username === m)?.role;
                      return (
                        <li key={m}>
                          <code>{m}</code>
                          {role ? ` (${role})` : ''}
                        </li>
                      );
                    })}
                  </ul>
                ) : contract?.members.length ? (
                  <ul className="plain">
                    {contract.members.map((m) => (
                      <li key={m.username}>
                        <code>{m.username}</code>
                        {m.role ? ` (${m.role})` : ''}
                      </li>
                    ))}
                  </ul>
                ) : (
                  '—'
                )}
              </dd>
            </dl>
            <h3>Support</h3>
            {contract?.support.length ? (
              <ul className="plain">
                {contract.support.map((s, i) => (
                  <li key={i}>
                    {s.url && /^https?:\/\//.test(s.url) ? (
                      <a href={s.url} rel="noreferrer">
                        {s.channel}
                      </a>
                    ) : (
                      <code>{s.channel}</code>
                    )}
                    {s.tool ? ` on ${s.tool}` : ''}
                    {s.scope ? <span className="small-note">{s.scope}</span> : null}
                    {s.description ? <span className="small-note">{s.description}</span> : null}
                  </li>
                ))}
              </ul>
            ) : (
              <p className="muted">The contract names no support channel.</p>
            )}
            {contract?.sla.length ? (
              <>
                <h3>Service levels</h3>
                <dl className="facts">
                  {contract.sla.map((s, i) => (
                    <div key={i} className="fact">
                      <dt>
                        {s.property}
                        {s.element ? ` (${s.element})` : ''}
                      </dt>
                      <dd>
                        {s.value}
                        {s.unit ? ` ${s.unit}` : ''}
                        {s.description ? <span className="small-note">{s.description}</span> : null}
                      </dd>
                    </div>
                  ))}
                </dl>
              </>
            ) : null}
            {p.tags.length ? (
              <>
                <h3>Tags</h3>
                <ul className="tags">
                  {p.tags.map((t) => (
                    <li key={t}>
                      <Link to={`/?tag=${encodeURIComponent(t)}`}>{t}</Link>
                    </li>
                  ))}
                </ul>
              </>
            ) : null}
          </div>
        </div>
      </section>

      <section id="contract" aria-labelledby="contract-h" className="panel">
        <h2 id="contract-h">Contract</h2>
        <Async state={versions} label="contract versions">
          {(vs) => (
            <Async state={policies} label="policies">
              {(pol) => (
                <SchemaSection
                  product={p}
                  versions={[...vs].sort((a, b) => b.created_at.localeCompare(a.created_at)).map((v) => v.version)}
                  policies={pol}
                />
              )}
            </Async>
          )}
        </Async>
      </section>

      <section id="quality" aria-labelledby="quality-h" className="panel">
        <h2 id="quality-h">Quality and freshness</h2>
        <Async state={quality} label="quality runs">
          {(q) => <QualitySection runs={q.items} slaSeconds={contract?.freshnessSeconds} />}
        </Async>
      </section>

      <section id="changes" aria-labelledby="changes-h" className="panel">
        <h2 id="changes-h">Change history</h2>
        <Async state={versions} label="contract versions">
          {(vs) => <ChangesSection versions={vs} />}
        </Async>
      </section>

      <section id="lineage" aria-labelledby="lineage-h" className="panel">
        <h2 id="lineage-h">Lineage</h2>
        <Async state={lineage} label="lineage">
          {(l) =>
            l.nodes.length <= 1 ? (
              <EmptyState>This product has no input port and no product reads it.</EmptyState>
            ) : (
              <>
                <p className="help">
                  Data flows left to right, from input ports to the products that read them. Select a product to open it.
                </p>
                <LineageGraph lineage={l} current={id} />
                <p>
                  Reads from: {upstream.length ? upstream.map((u) => <code key={u}>{u} </code>) : 'nothing'} · read by:{' '}
                  {downstream.length ? downstream.map((u) => <code key={u}>{u} </code>) : 'no product'}
                </p>
              </>
            )
          }
        </Async>
      </section>

      <section id="query" aria-labelledby="query-h" className="panel">
        <h2 id="query-h">Sample query</h2>
        <CodeBlock label="SQL" code={sql} />
        <p>
          <Link className="button primary" to={`/console?sql=${encodeURIComponent(sql)}`}>
            Run it in the SQL console
          </Link>
        </p>
      </section>

      <section id="connect" aria-labelledby="connect-h" className="panel">
        <h2 id="connect-h">How to connect</h2>
        <ConnectSection sql={sql} />
      </section>

      <section id="access" aria-labelledby="access-h" className="panel">
        <h2 id="access-h">Access</h2>
        {owner ? (
          <p>
            You own this product. Requests for access to it wait for you on the <Link to="/access">Access</Link> page.
          </p>
        ) : (
          <>
            <p>
              {session.admin
                ? 'Platform admins may query every product. You can still file a request, for the record.'
                : 'Without a grant, this product does not exist in your SQL sessions. Ask its owners for access:'}
            </p>
            <RequestAccessForm domain={p.domain} product={p.name} />
          </>
        )}
      </section>
    </article>
  );
}
