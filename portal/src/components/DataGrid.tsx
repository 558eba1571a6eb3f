import { useEffect, useId, useState } from 'react';
import type { Schemas } from '../api/client';
import { formatNumber } from '../lib/format';

type Column = Schemas['Column'];

const NUMERIC = /^(U?Int\d+|Float\d+|Decimal(128|256)?\b.*)$/;

export function isNumericType(type: string): boolean {
  return NUMERIC.test(type);
}

export function isTextType(type: string): boolean {
  return /^(Utf8|Utf8View|LargeUtf8|Dictionary\(.*Utf8.*\))$/.test(type);
}

function Cell({ value, numeric }: { value: unknown; numeric: boolean }) {
  if (value === null || value === undefined) return <td className="null">NULL</td>;
  if (typeof value === 'object') return <td className="json">{JSON.stringify(value)}</td>;
  if (typeof value === 'boolean') return <td>{value ? 'true' : 'false'}</td>;
  return <td className={numeric ? 'num' : undefined}>{String(value)}</td>;
}

/** A result grid with client-side paging. */
export function DataGrid({
  columns,
  rows,
  caption,
  pageSizes = [25, 50, 100, 500],
}: {
  columns: Column[];
  rows: Record<string, unknown>[];
  caption: string;
  pageSizes?: number[];
}) {
  const [pageSize, setPageSize] = useState(pageSizes[0] ?? 25);
  const [page, setPage] = useState(0);
  const id = useId();
  useEffect(() => setPage(0), [rows, pageSize]);

  const pages = Math.max(1, Math.ceil(rows.length / pageSize));
  const current = Math.min(page, pages - 1);
  const start = current * pageSize;
  const shown = rows.slice(start, start + pageSize);
  const numeric = columns.map((c) => isNumericType(c.type));
  const range = rows.length ? `rows ${formatNumber(start + 1)}–${formatNumber(start + shown.length)} of ${formatNumber(rows.length)}` : 'no rows';

  return (
    <div className="grid">
      <div className="grid-scroll" tabIndex={0} role="region" aria-labelledby={`${id}-caption`}>
        <table className="data">
          <caption id={`${id}-caption`} className="visually-hidden">
            {caption}, {range}
          </caption>
          <thead>
            <tr>
              {columns.map((c, i) => (
                <th key={c.name} scope="col" className={numeric[i] ? 'num' : undefined}>
                  <span className="col-name">{c.name}</span>
                  <span className="col-type">{c.type}</span>
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {shown.map((row, r) => (
              <tr key={start + r}>
                {columns.map((c, i) => (
                  <Cell key={c.name} value={row[c.name]} numeric={numeric[i] ?? false} />
                ))}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <nav className="pager" aria-label={`${caption} pages`}>
        <button type="button" className="button small" onClick={() => setPage(0)} disabled={current === 0}>
          First
        </button>
        <button type="button" className="button small" onClick={() => setPage(current - 1)} disabled={current === 0}>
          Previous
        </button>
        <span className="pager-status" aria-live="polite">
          Page {current + 1} of {pages} ({range})
        </span>
        <button type="button" className="button small" onClick={() => setPage(current + 1)} disabled={current >= pages - 1}>
          Next
        </button>
        <button type="button" className="button small" onClick={() => setPage(pages - 1)} disabled={current >= pages - 1}>
          Last
        </button>
        <label className="inline">
          Rows per page{' '}
          <select value={pageSize} onChange={(e) => setPageSize(Number(e.target.value))}>
            {pageSizes.map((n) => (
              <option key={n} value={n}>
                {n}
              </option>
            ))}
          </select>
        </label>
      </nav>
    </div>
  );
}
