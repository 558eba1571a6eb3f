import { useId, useState } from 'react';
import { api, unwrap, type MaskSpec, type Product, type RowFilter } from '../../api/client';
import { Async, Badge, EmptyState } from '../../components/common';
import { parseContract, type ContractColumn } from '../../lib/contract';
import { describeMask, maskFor, rowFiltersFor } from '../../lib/policy';
import { useAsync } from '../../lib/useAsync';
import { useSession } from '../../session';

/** Masks and row filters the viewer may list (admins: all), or null: unknown to the viewer. */
export interface Policies {
  masks: MaskSpec[];
  filters: RowFilter[];
}

function Visible({
  column,
  product,
  policies,
  purpose,
}: {
  column: ContractColumn;
  product: Product;
  policies: Policies | null;
  purpose: string | null;
}) {
  const session = useSession();
  if (session.owns(product)) return <span className="clear">in clear (you own it)</span>;
  if (!policies) {
    return column.classification && column.classification !== 'public' ? (
      <span className="maybe">may be masked</span>
    ) : (
      <span className="muted">no mask expected</span>
    );
  }
  const mask = maskFor(column, product, policies.masks, session, purpose);
  if (!mask) return <span className="clear">in clear</span>;
  return (
    <span className="masked">
      {describeMask(mask.fn)} <span className="muted">by mask <code>{mask.mask}</code></span>
    </span>
  );
}

export function SchemaSection({
  product,
  versions,
  policies,
}: {
  product: Product;
  versions: string[];
  policies: Policies | null;
}) {
  const session = useSession();
  const id = useId();
  const [version, setVersion] = useState(product.latest_contract_version ?? versions[0] ?? '');
  const [purpose, setPurpose] = useState<string | null>(session.purposes[0] ?? null);
  const contract = useAsync(
    () =>
      version
        ? unwrap(
            api.GET('/api/v1/domains/{domain}/products/{product}/contracts/{version}', {
              params: { path: { domain: product.domain, product: product.name, version } },
            }),
          ).then((c) => ({ version: c, parsed: parseContract(c.document) }))
        : Promise.resolve(null),
    [product.domain, product.name, version],
  );
  const owner = session.owns(product);
  const filters = policies ? rowFiltersFor(product, policies.filters, session, purpose) : [];

  if (!versions.length) return <EmptyState>No contract has been registered for this product yet.</EmptyState>;
  return (
    <>
      <div className="toolbar">
        {versions.length > 1 ? (
          <div className="field inline">
            <label htmlFor={`${id}-version`}>Contract version</label>
            <select id={`${id}-version`} value={version} onChange={(e) => setVersion(e.target.value)}>
              {versions.map((v) => (
                <option key={v} value={v}>
                  {v}
                  {v === product.latest_contract_version ? ' (latest)' : ''}
                </option>
              ))}
            </select>
          </div>
        ) : null}
        {!owner && policies && session.purposes.length ? (
          <div className="field inline">
            <label htmlFor={`${id}-purpose`}>Querying with purpose</label>
            <select id={`${id}-purpose`} value={purpose ?? ''} onChange={(e) => setPurpose(e.target.value || null)}>
              <option value="">none</option>
              {session.purposes.map((p) => (
                <option key={p} value={p}>
                  {p}
                </option>
              ))}
            </select>
          </div>
        ) : null}
      </div>
      <p className="help">
        {owner
          ? 'You own this product: its columns read in clear for you, whatever the masks say.'
          : policies
            ? 'The last column says how each column reads for you, computed from the column masks in force.'
            : 'Masks are not listed for you: columns classified other than public may be masked when you query them.'}
      </p>
      {filters.length ? (
        <div className="notice">
          <p>Row filters limit the rows you see:</p>
          <ul>
            {filters.map((f) => (
              <li key={f.spec.name}>
                <code>{f.spec.name}</code>: <code className="wrap">{f.spec.expression}</code>
              </li>
            ))}
          </ul>
        </div>
      ) : null}
      <Async state={contract} label="the contract">
        {(c) =>
          !c ? null : (
            <>
              {c.parsed.table ? (
                <p>
                  Table <code>{c.parsed.table.physicalName ?? c.parsed.table.name}</code>
                  {c.parsed.table.description ? `: ${c.parsed.table.description}` : ''} · contract{' '}
                  <code>v{c.version.version}</code> ({c.version.api_version ?? 'ODCS'}), registered by{' '}
                  <code>{c.version.created_by}</code>
                </p>
              ) : null}
              {c.parsed.columns.length === 0 ? (
                <EmptyState>The contract declares no columns.</EmptyState>
              ) : (
                <div className="table-scroll">
                  <table className="list schema">
                    <caption className="visually-hidden">Columns of contract version {c.version.version}</caption>
                    <thead>
                      <tr>
                        <th scope="col">Column</th>
                        <th scope="col">Type</th>
                        <th scope="col">Constraints</th>
                        <th scope="col">Classification</th>
                        <th scope="col">Description</th>
                        <th scope="col">You see it</th>
                      </tr>
                    </thead>
                    <tbody>
                      {c.parsed.columns.map((col) => (
                        <tr key={col.name}>
                          <th scope="row" style={{ paddingLeft: `${0.75 + col.depth}rem` }}>
                            <code>{col.name}</code>
                          </th>
                          <td>
                            <code>{col.physicalType ?? '—'}</code>
                            {col.logicalType ? <span className="small-note">{col.logicalType}</span> : null}
                          </td>
                          <td>
                            <span className="constraints">
                              {col.primaryKey ? <Badge>primary key</Badge> : null}
                              {col.unique && !col.primaryKey ? <Badge>unique</Badge> : null}
                              {col.required ? <Badge>required</Badge> : <Badge tone="muted">nullable</Badge>}
                              {col.partitioned ? <Badge>partition</Badge> : null}
                              {col.criticalDataElement ? <Badge tone="accent">critical</Badge> : null}
                            </span>
                          </td>
                          <td>
                            {col.classification ? (
                              <span className={`badge class-${col.classification === 'public' ? 'public' : 'sensitive'}`}>
                                {col.classification}
                              </span>
                            ) : (
                              <span className="muted">—</span>
                            )}
                          </td>
                          <td className="desc">{col.description ?? ''}</td>
                          <td>
                            <Visible column={col} product={product} policies={policies} purpose={purpose} />
                          </td>
                        </tr>
                      ))}
                    </tbody>
                  </table>
                </div>
              )}
            </>
          )
        }
      </Async>
    </>
  );
}
