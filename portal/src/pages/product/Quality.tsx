import type { QualityResult, QualityRun } from '../../api/client';
import { Badge, EmptyState, HealthBadge } from '../../components/common';
import { formatDateTime, formatNumber, formatSeconds } from '../../lib/format';

function StatusCell({ status }: { status: QualityResult['status'] }) {
  const tone = status === 'pass' ? 'ok' : status === 'fail' ? 'bad' : 'warn';
  const text = status === 'not_executable' ? 'not executable' : status;
  return <Badge tone={tone}>{text}</Badge>;
}

/** The freshness check against the SLA: the last commit's age, then and now. */
function Freshness({ run, slaSeconds }: { run: QualityRun; slaSeconds?: number }) {
  const check = run.results.find((r) => r.rule === 'freshness');
  if (!check) {
    return (
      <p>
        {slaSeconds !== undefined
          ? `The contract promises data at most ${formatSeconds(slaSeconds)} old, but the last quality run did not check freshness.`
          : 'The contract makes no freshness promise (no freshness, frequency or latency SLA).'}
      </p>
    );
  }
  const m = /(-?[0-9.]+)\s*$/.exec(check.threshold ?? '');
  const limit = m ? Number(m[1]) : slaSeconds;
  const ranAt = new Date(run.ran_at).getTime();
  const lastCommit = check.measured !== null && check.measured !== undefined ? ranAt - check.measured * 1000 : null;
  const ageNow = lastCommit !== null ? (Date.now() - lastCommit) / 1000 : null;
  const lateNow = ageNow !== null && limit !== undefined && ageNow > limit;
  return (
    <dl className="facts">
      <dt>Promise (SLA)</dt>
      <dd>{limit !== undefined ? `data at most ${formatSeconds(limit)} old` : '—'}</dd>
      <dt>Last commit</dt>
      <dd>{lastCommit !== null ? formatDateTime(new Date(lastCommit).toISOString()) : (check.message ?? '—')}</dd>
      <dt>At the last check</dt>
      <dd>
        <StatusCell status={check.status} />{' '}
        {check.measured !== null && check.measured !== undefined ? `${formatSeconds(check.measured)} old on ${formatDateTime(run.ran_at)}` : ''}
      </dd>
      <dt>Now</dt>
      <dd>
        {ageNow === null ? (
          '—'
        ) : lateNow ? (
          <>
            <Badge tone="bad">past the SLA</Badge> {formatSeconds(ageNow)} old, unless a commit came after the last check
          </>
        ) : (
          <>
            <Badge tone="ok">within the SLA</Badge> {formatSeconds(ageNow)} old at most
          </>
        )}
      </dd>
    </dl>
  );
}

export function QualitySection({ runs, slaSeconds }: { runs: QualityRun[]; slaSeconds?: number }) {
  const latest = runs[0];
  if (!latest) return <EmptyState>No quality run has been reported for this product yet.</EmptyState>;
  const counts = latest.results.reduce<Record<string, number>>((acc, r) => ({ ...acc, [r.status]: (acc[r.status] ?? 0) + 1 }), {});
  const checks = latest.results.filter((r) => r.rule !== 'freshness');
  return (
    <>
      <p>
        Latest run on {formatDateTime(latest.ran_at)} against contract <code>v{latest.contract_version}</code>
        {latest.table_version !== null && latest.table_version !== undefined ? <> and table version {latest.table_version}</> : null}
        , reported by <code>{latest.reported_by}</code>: <HealthBadge health={latest.health} />{' '}
        <span className="muted">
          {formatNumber(counts.pass ?? 0)} passed, {formatNumber(counts.fail ?? 0)} failed
          {counts.error ? `, ${counts.error} errors` : ''}
          {counts.not_executable ? `, ${counts.not_executable} not executable` : ''}
        </span>
      </p>
      <h3>Freshness</h3>
      <Freshness run={latest} slaSeconds={slaSeconds} />
      <h3>Checks</h3>
      {checks.length === 0 ? (
        <EmptyState>The contract declares no quality rule.</EmptyState>
      ) : (
        <div className="table-scroll">
          <table className="list">
            <caption className="visually-hidden">Quality checks of the latest run</caption>
            <thead>
              <tr>
                <th scope="col">Check</th>
                <th scope="col">Rule</th>
                <th scope="col">Dimension</th>
                <th scope="col" className="num">
                  Measured
                </th>
                <th scope="col">Expected</th>
                <th scope="col">Result</th>
              </tr>
            </thead>
            <tbody>
              {checks.map((r) => (
                <tr key={r.key}>
                  <th scope="row">
                    <code>{r.path}</code>
                    {r.message ? <span className="small-note">{r.message}</span> : null}
                  </th>
                  <td>{r.rule}</td>
                  <td>
                    {r.dimension ?? '—'}
                    {r.severity ? <span className="small-note">severity {r.severity}</span> : null}
                  </td>
                  <td className="num">{formatNumber(r.measured)}</td>
                  <td>{r.threshold ?? '—'}</td>
                  <td>
                    <StatusCell status={r.status} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {runs.length > 1 ? (
        <>
          <h3>Earlier runs</h3>
          <ul className="runs">
            {runs.slice(1, 11).map((r) => (
              <li key={r.id}>
                {formatDateTime(r.ran_at)} · <code>v{r.contract_version}</code> · <HealthBadge health={r.health} />{' '}
                <span className="muted">
                  {r.results.filter((x) => x.status === 'pass').length}/{r.results.length} passed
                </span>
              </li>
            ))}
          </ul>
        </>
      ) : null}
    </>
  );
}
