import { useEffect, useId, useMemo, useRef, useState, type FormEvent, type KeyboardEvent } from 'react';
import { useSearchParams } from 'react-router';
import type { QueryResult } from '../api/client';
import { queryCsv, runQuery, saveBlob } from '../api/query';
import { BarChart } from '../components/BarChart';
import { DataGrid, isNumericType, isTextType } from '../components/DataGrid';
import { EmptyState, ProblemView, useTitle } from '../components/common';
import { formatNumber } from '../lib/format';
import { useSession } from '../session';

const DEFAULT_SQL =
  'SELECT n_name, count(*) AS customers\nFROM customers.customer\nJOIN customers.nation ON c_nationkey = n_nationkey\nGROUP BY n_name\nORDER BY customers DESC';
const PURPOSE_KEY = 'tessera.purpose';
const SQL_KEY = 'tessera.sql';

function chartOf(result: QueryResult) {
  const label = result.columns.find((c) => isTextType(c.type)) ?? result.columns.find((c) => !isNumericType(c.type));
  const value = result.columns.find((c) => isNumericType(c.type) && c.name !== label?.name);
  if (!label || !value) return null;
  const bars = result.rows
    .map((r) => ({ label: r[label.name] === null ? 'NULL' : String(r[label.name]), value: Number(r[value.name]) }))
    .filter((b) => Number.isFinite(b.value));
  return { label: label.name, value: value.name, bars };
}

export function Console() {
  useTitle('SQL console');
  const session = useSession();
  const id = useId();
  const [params] = useSearchParams();
  const [sql, setSql] = useState(() => params.get('sql') ?? sessionStorage.getItem(SQL_KEY) ?? DEFAULT_SQL);
  const [purpose, setPurpose] = useState(() => {
    const saved = sessionStorage.getItem(PURPOSE_KEY);
    if (saved !== null && (saved === '' || session.purposes.includes(saved))) return saved;
    return session.purposes[0] ?? '';
  });
  const [result, setResult] = useState<QueryResult | null>(null);
  const [error, setError] = useState<unknown>(undefined);
  const [running, setRunning] = useState(false);
  const [downloading, setDownloading] = useState(false);
  const [view, setView] = useState<'table' | 'chart'>('table');
  const abort = useRef<AbortController | null>(null);

  useEffect(() => {
    const fromLink = params.get('sql');
    if (fromLink) setSql(fromLink);
  }, [params]);
  useEffect(() => sessionStorage.setItem(SQL_KEY, sql), [sql]);
  useEffect(() => sessionStorage.setItem(PURPOSE_KEY, purpose), [purpose]);
  useEffect(() => () => abort.current?.abort(), []);

  const run = async (e?: FormEvent) => {
    e?.preventDefault();
    if (!sql.trim() || running) return;
    abort.current?.abort();
    const controller = new AbortController();
    abort.current = controller;
    setRunning(true);
    setError(undefined);
    try {
      const r = await runQuery(sql, { purpose: purpose || null, signal: controller.signal });
      setResult(r);
    } catch (err) {
      if (err instanceof DOMException && err.name === 'AbortError') return;
      setError(err);
      setResult(null);
    } finally {
      if (abort.current === controller) {
        setRunning(false);
        abort.current = null;
      }
    }
  };

  const cancel = () => {
    abort.current?.abort();
    abort.current = null;
    setRunning(false);
  };

  const download = async () => {
    setDownloading(true);
    setError(undefined);
    try {
      const blob = await queryCsv(sql, { purpose: purpose || null });
      saveBlob(blob, `tessera-${result?.query_id ?? 'result'}.csv`);
    } catch (err) {
      setError(err);
    } finally {
      setDownloading(false);
    }
  };

  const onKeyDown = (e: KeyboardEvent<HTMLTextAreaElement>) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      void run();
    }
  };

  const chart = useMemo(() => (result ? chartOf(result) : null), [result]);

  return (
    <>
      <div className="page-head">
        <h1>SQL console</h1>
        <p className="lead">
          Queries run through the gateway as <code>{session.name}</code>: only the products you may query exist, with
          your masks and row filters applied. Name tables <code>domain.product</code>.
        </p>
      </div>
      <form onSubmit={run} className="console-form" aria-label="Query">
        <div className="field">
          <label htmlFor={`${id}-sql`}>SQL</label>
          <textarea
            id={`${id}-sql`}
            className="sql"
            value={sql}
            onChange={(e) => setSql(e.target.value)}
            onKeyDown={onKeyDown}
            rows={8}
            spellCheck={false}
            autoCapitalize="off"
            autoCorrect="off"
            aria-describedby={`${id}-sql-help`}
          />
          <p id={`${id}-sql-help`} className="help">
            One statement (SELECT, WITH, VALUES, EXPLAIN, SHOW TABLES). Press Ctrl+Enter to run.
          </p>
        </div>
        <div className="toolbar">
          <div className="field inline">
            <label htmlFor={`${id}-purpose`}>Purpose</label>
            <select
              id={`${id}-purpose`}
              value={purpose}
              onChange={(e) => setPurpose(e.target.value)}
              aria-describedby={`${id}-purpose-help`}
            >
              <option value="">none</option>
              {session.purposes.map((p) => (
                <option key={p} value={p}>
                  {p}
                </option>
              ))}
            </select>
          </div>
          <span id={`${id}-purpose-help`} className="help inline-help">
            {session.purposes.length
              ? 'Grants and mask exemptions may hold only for a purpose.'
              : 'You may not declare a purpose.'}
          </span>
          <span className="spacer" />
          {running ? (
            <button type="button" className="button" onClick={cancel}>
              Cancel
            </button>
          ) : null}
          <button type="button" className="button" onClick={download} disabled={downloading || running || !sql.trim()}>
            {downloading ? 'Preparing CSV…' : 'Download CSV'}
          </button>
          <button type="submit" className="button primary" disabled={running || !sql.trim()}>
            {running ? 'Running…' : 'Run query'}
          </button>
        </div>
      </form>

      <section aria-labelledby={`${id}-results`} className="results">
        <h2 id={`${id}-results`} className="visually-hidden">
          Result
        </h2>
        <div role="status" aria-live="polite" className="result-meta">
          {running
            ? 'Running the query…'
            : result
              ? `${formatNumber(result.row_count ?? result.rows.length)} rows in ${formatNumber(result.elapsed_ms)} ms`
              : ''}
          {result && !running ? (
            <span className="muted">
              {' '}
              · query id <code>{result.query_id}</code>
            </span>
          ) : null}
        </div>
        {error !== undefined ? <ProblemView error={error} title="The query failed" /> : null}
        {result ? (
          <>
            <div className="toolbar">
              <div role="radiogroup" aria-label="Show the result as" className="segmented">
                <label className={view === 'table' ? 'on' : undefined}>
                  <input type="radio" name={`${id}-view`} value="table" checked={view === 'table'} onChange={() => setView('table')} />
                  Table
                </label>
                <label className={view === 'chart' ? 'on' : undefined}>
                  <input type="radio" name={`${id}-view`} value="chart" checked={view === 'chart'} onChange={() => setView('chart')} />
                  Chart
                </label>
              </div>
            </div>
            {result.columns.length === 0 ? (
              <EmptyState>The statement returned no columns.</EmptyState>
            ) : view === 'table' ? (
              <DataGrid columns={result.columns} rows={result.rows} caption="Query result" />
            ) : chart && chart.bars.length ? (
              <BarChart bars={chart.bars} title={`${chart.value} by ${chart.label}`} valueName={chart.value} />
            ) : (
              <EmptyState>
                A chart needs a text column and a numeric column; this result has{' '}
                {result.columns.map((c) => `${c.name} (${c.type})`).join(', ')}.
              </EmptyState>
            )}
          </>
        ) : null}
      </section>
    </>
  );
}
