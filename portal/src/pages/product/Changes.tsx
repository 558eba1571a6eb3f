import type { ContractVersionSummary, Verdict } from '../../api/client';
import { Badge, EmptyState, VerdictBadge } from '../../components/common';
import { formatDateTime } from '../../lib/format';

function major(v: string): string {
  return v.split('.')[0] ?? v;
}

function overall(changes: ContractVersionSummary['changes']): Verdict | null {
  if (!changes?.length) return null;
  if (changes.some((c) => c.verdict === 'breaking')) return 'breaking';
  if (changes.some((c) => c.verdict === 'warning')) return 'warning';
  return 'free';
}

/** Contract versions, newest first, each with what changed and the verdicts. */
export function ChangesSection({ versions }: { versions: ContractVersionSummary[] }) {
  if (!versions.length) return <EmptyState>No contract version yet.</EmptyState>;
  const sorted = [...versions].sort((a, b) => b.created_at.localeCompare(a.created_at));
  return (
    <ol className="history">
      {sorted.map((v, i) => {
        const previous = sorted[i + 1];
        const newMajor = previous && major(previous.version) !== major(v.version);
        const verdict = overall(v.changes);
        return (
          <li key={v.version}>
            <div className="history-head">
              <h3>
                <code>v{v.version}</code>
              </h3>
              {!previous ? (
                <Badge>first version</Badge>
              ) : newMajor ? (
                <Badge tone="accent">new major version</Badge>
              ) : verdict ? (
                <VerdictBadge verdict={verdict} />
              ) : (
                <Badge tone="ok">no schema change</Badge>
              )}
              <span className="muted">
                {formatDateTime(v.created_at)} by <code>{v.created_by}</code>
              </span>
            </div>
            {v.changes?.length ? (
              <div className="table-scroll">
                <table className="list compact">
                  <caption className="visually-hidden">Changes in version {v.version}</caption>
                  <thead>
                    <tr>
                      <th scope="col">Where</th>
                      <th scope="col">Change</th>
                      <th scope="col">Before</th>
                      <th scope="col">After</th>
                      <th scope="col">Verdict</th>
                    </tr>
                  </thead>
                  <tbody>
                    {v.changes.map((c, j) => (
                      <tr key={j}>
                        <th scope="row">
                          <code>{c.path}</code>
                        </th>
                        <td>{c.rule}</td>
                        <td>{c.old ?? '—'}</td>
                        <td>{c.new ?? '—'}</td>
                        <td>
                          <VerdictBadge verdict={c.verdict} />
                        </td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
            ) : null}
          </li>
        );
      })}
    </ol>
  );
}
