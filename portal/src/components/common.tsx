import { useEffect, useRef, useState, type ReactNode } from 'react';
import { ApiError, type Health, type ProductStatus, type Verdict } from '../api/client';
import type { AsyncState } from '../lib/useAsync';

/** A problem (RFC 9457) or any other error, announced to assistive technology. */
export function ProblemView({ error, title }: { error: unknown; title?: string }) {
  if (error instanceof ApiError) {
    const p = error.problem;
    return (
      <div className="problem" role="alert">
        <p className="problem-title">
          {title ? `${title}: ` : ''}
          {p.title}
          {p.status ? <span className="problem-status"> (HTTP {p.status})</span> : null}
        </p>
        {p.detail ? <p className="problem-detail">{p.detail}</p> : null}
        <dl className="problem-meta">
          {p.sqlstate ? (
            <>
              <dt>SQLSTATE</dt>
              <dd>
                <code>{p.sqlstate}</code>
              </dd>
            </>
          ) : null}
          {p.type && p.type !== 'about:blank' ? (
            <>
              <dt>Type</dt>
              <dd>
                <code>{p.type}</code>
              </dd>
            </>
          ) : null}
          {p.query_id ? (
            <>
              <dt>Query id</dt>
              <dd>
                <code>{p.query_id}</code>
              </dd>
            </>
          ) : null}
          {p.request_id ? (
            <>
              <dt>Request id</dt>
              <dd>
                <code>{p.request_id}</code>
              </dd>
            </>
          ) : null}
        </dl>
        {p.errors?.length ? (
          <ul className="problem-list">
            {p.errors.map((e, i) => (
              <li key={i}>
                <code>{e.path}</code>: {e.message}
              </li>
            ))}
          </ul>
        ) : null}
        {p.violations?.length ? (
          <ul className="problem-list">
            {p.violations.map((v, i) => (
              <li key={i}>
                <code>{v.path}</code>: {v.rule} ({v.verdict})
              </li>
            ))}
          </ul>
        ) : null}
      </div>
    );
  }
  const message = error instanceof Error ? error.message : String(error);
  return (
    <div className="problem" role="alert">
      <p className="problem-title">{title ?? 'Something went wrong'}</p>
      <p className="problem-detail">{message}</p>
    </div>
  );
}

export function Loading({ label = 'Loading…' }: { label?: string }) {
  return (
    <p className="loading" role="status">
      {label}
    </p>
  );
}

/** Loading, error or the data. */
export function Async<T>({
  state,
  label,
  children,
}: {
  state: AsyncState<T>;
  label?: string;
  children: (data: T) => ReactNode;
}) {
  if (state.error !== undefined) return <ProblemView error={state.error} title={label ? `Could not load ${label}` : undefined} />;
  if (state.data === undefined) return <Loading label={label ? `Loading ${label}…` : undefined} />;
  return <>{children(state.data)}</>;
}

const HEALTH_TEXT: Record<Health, string> = {
  healthy: 'Healthy',
  degraded: 'Degraded',
  failing: 'Failing',
  drifted: 'Drifted from its contract',
  unknown: 'Unknown',
};
const HEALTH_ICON: Record<Health, string> = { healthy: '●', degraded: '▲', failing: '■', drifted: '◆', unknown: '○' };

export function HealthBadge({ health }: { health: Health }) {
  return (
    <span className={`badge health-${health}`}>
      <span aria-hidden="true">{HEALTH_ICON[health]} </span>
      {HEALTH_TEXT[health]}
    </span>
  );
}

export function StatusBadge({ status }: { status: ProductStatus }) {
  return <span className={`badge status-${status}`}>{status}</span>;
}

const VERDICT_TEXT: Record<Verdict, string> = { free: 'non-breaking', warning: 'warning', breaking: 'breaking' };
export function VerdictBadge({ verdict }: { verdict: Verdict }) {
  return <span className={`badge verdict-${verdict}`}>{VERDICT_TEXT[verdict]}</span>;
}

export function Badge({ tone = 'neutral', children }: { tone?: string; children: ReactNode }) {
  return <span className={`badge tone-${tone}`}>{children}</span>;
}

/** A block of code with a copy button. */
export function CodeBlock({ code, label }: { code: string; label: string }) {
  const [copied, setCopied] = useState(false);
  const timer = useRef<number>();
  useEffect(() => () => window.clearTimeout(timer.current), []);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(code);
      setCopied(true);
      window.clearTimeout(timer.current);
      timer.current = window.setTimeout(() => setCopied(false), 2000);
    } catch {
      setCopied(false);
    }
  };
  return (
    <figure className="code">
      <figcaption>
        <span>{label}</span>
        <button type="button" className="button small" onClick={copy} aria-label={`Copy ${label}`}>
          {copied ? 'Copied' : 'Copy'}
        </button>
      </figcaption>
      <pre tabIndex={0} aria-label={label}>
        <code>{code}</code>
      </pre>
      <span className="visually-hidden" role="status">
        {copied ? `${label} copied to the clipboard` : ''}
      </span>
    </figure>
  );
}

/** Sets the document title while a page is shown. */
export function useTitle(title: string): void {
  useEffect(() => {
    document.title = title ? `${title} · Tessera` : 'Tessera';
  }, [title]);
}

export function EmptyState({ children }: { children: ReactNode }) {
  return <p className="empty">{children}</p>;
}
