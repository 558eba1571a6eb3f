import { useId, useMemo, useState } from 'react';
import { Link } from 'react-router';
import { api, fetchAll, unwrap, type AccessRequest, type Product } from '../api/client';
import { Async, Badge, EmptyState, ProblemView, useTitle } from '../components/common';
import { RequestAccessForm } from '../components/RequestAccessForm';
import { formatDate, formatDateTime } from '../lib/format';
import { useAsync } from '../lib/useAsync';
import { useSession } from '../session';

type Status = AccessRequest['status'];

function listRequests(status?: Status) {
  return fetchAll<AccessRequest>((cursor) =>
    api.GET('/api/v1/access-requests', { params: { query: { status, limit: 500, cursor } } }),
  );
}

function StatusBadgeFor({ status }: { status: Status }) {
  return <Badge tone={status === 'approved' ? 'ok' : status === 'denied' ? 'bad' : 'warn'}>{status}</Badge>;
}

function Decide({ request, onDone }: { request: AccessRequest; onDone: () => void }) {
  const id = useId();
  const [expires, setExpires] = useState('');
  const [note, setNote] = useState('');
  const [busy, setBusy] = useState<'approve' | 'deny' | null>(null);
  const [error, setError] = useState<unknown>(undefined);
  const today = new Date().toISOString().slice(0, 10);

  const decide = async (what: 'approve' | 'deny') => {
    setBusy(what);
    setError(undefined);
    try {
      const path = { id: String(request.id) };
      if (what === 'approve') {
        await unwrap(
          api.POST('/api/v1/access-requests/{id}/approve', {
            params: { path },
            body: {
              expires_at: expires ? new Date(`${expires}T23:59:59`).toISOString() : null,
              note: note.trim() || null,
            },
          }),
        );
      } else {
        await unwrap(api.POST('/api/v1/access-requests/{id}/deny', { params: { path }, body: { note: note.trim() || null } }));
      }
      onDone();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(null);
    }
  };

  return (
    <form className="decide" onSubmit={(e) => e.preventDefault()} aria-label={`Decide request #${request.id}`}>
      <div className="field inline">
        <label htmlFor={`${id}-expires`}>Grant expires on (optional)</label>
        <input id={`${id}-expires`} type="date" min={today} value={expires} onChange={(e) => setExpires(e.target.value)} />
      </div>
      <div className="field grow">
        <label htmlFor={`${id}-note`}>Note to the requester (optional)</label>
        <input id={`${id}-note`} type="text" maxLength={4000} value={note} onChange={(e) => setNote(e.target.value)} />
      </div>
      <div className="decide-buttons">
        <button type="button" className="button primary" disabled={busy !== null} onClick={() => decide('approve')}>
          {busy === 'approve' ? 'Approving…' : 'Approve'}
        </button>
        <button type="button" className="button danger" disabled={busy !== null} onClick={() => decide('deny')}>
          {busy === 'deny' ? 'Denying…' : 'Deny'}
        </button>
      </div>
      {error !== undefined ? <ProblemView error={error} title={`Request #${request.id} was not decided`} /> : null}
    </form>
  );
}

function Pending({ requests, reload }: { requests: AccessRequest[]; reload: () => void }) {
  const session = useSession();
  const products = useAsync(
    () => fetchAll<Product>((cursor) => api.GET('/api/v1/products', { params: { query: { limit: 500, cursor } } })),
    [],
  );
  const byId = useMemo(() => new Map((products.data ?? []).map((p) => [`${p.domain}.${p.name}`, p])), [products.data]);
  const mayDecide = (r: AccessRequest) => {
    if (session.admin) return true;
    const p = byId.get(`${r.domain}.${r.product}`);
    return p ? session.owns(p) : session.ownedDomains.includes(r.domain);
  };
  const toDecide = requests.filter((r) => r.requester !== session.name && mayDecide(r));
  if (!toDecide.length) return <EmptyState>No request is waiting for you.</EmptyState>;
  return (
    <ul className="cards">
      {toDecide.map((r) => (
        <li key={r.id} className="card">
          <h3>
            #{r.id}:{' '}
            <code>{r.requester}</code> asks for{' '}
            <Link to={`/products/${r.domain}/${r.product}`}>
              <code>
                {r.domain}.{r.product}
              </code>
            </Link>
          </h3>
          <dl className="facts">
            <dt>Purpose</dt>
            <dd>
              <code>{r.purpose}</code>
            </dd>
            <dt>Justification</dt>
            <dd className="prewrap">{r.justification}</dd>
            <dt>Asked</dt>
            <dd>{formatDateTime(r.created_at)}</dd>
          </dl>
          <Decide request={r} onDone={reload} />
        </li>
      ))}
    </ul>
  );
}

function RequestTable({ requests, caption, showRequester }: { requests: AccessRequest[]; caption: string; showRequester: boolean }) {
  if (!requests.length) return <EmptyState>None.</EmptyState>;
  return (
    <div className="table-scroll">
      <table className="list">
        <caption className="visually-hidden">{caption}</caption>
        <thead>
          <tr>
            <th scope="col">Request</th>
            {showRequester ? <th scope="col">Requester</th> : null}
            <th scope="col">Product</th>
            <th scope="col">Purpose</th>
            <th scope="col">Status</th>
            <th scope="col">Decision</th>
          </tr>
        </thead>
        <tbody>
          {requests.map((r) => (
            <tr key={r.id}>
              <th scope="row">
                #{r.id}
                <span className="small-note">{formatDateTime(r.created_at)}</span>
              </th>
              {showRequester ? (
                <td>
                  <code>{r.requester}</code>
                </td>
              ) : null}
              <td>
                <Link to={`/products/${r.domain}/${r.product}`}>
                  <code>
                    {r.domain}.{r.product}
                  </code>
                </Link>
              </td>
              <td>
                <code>{r.purpose}</code>
              </td>
              <td>
                <StatusBadgeFor status={r.status} />
              </td>
              <td>
                {r.decided_by ? (
                  <>
                    by <code>{r.decided_by}</code> on {formatDateTime(r.decided_at)}
                    {r.expires_at ? <span className="small-note">grant until {formatDate(r.expires_at)}</span> : null}
                    {r.grant_name ? <span className="small-note">grant <code>{r.grant_name}</code></span> : null}
                    {r.note ? <span className="small-note">“{r.note}”</span> : null}
                  </>
                ) : (
                  <span className="muted">waiting for the owners</span>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function NewRequest({ onCreated }: { onCreated: () => void }) {
  const session = useSession();
  const id = useId();
  const products = useAsync(
    () => fetchAll<Product>((cursor) => api.GET('/api/v1/products', { params: { query: { limit: 500, cursor } } })),
    [],
  );
  const [choice, setChoice] = useState('');
  return (
    <Async state={products} label="products">
      {(ps) => {
        const candidates = ps.filter((p) => !session.owns(p));
        if (!candidates.length) return <EmptyState>There is no product you could ask for.</EmptyState>;
        const [d, n] = (choice || `${candidates[0]!.domain}.${candidates[0]!.name}`).split('.');
        return (
          <div className="stack narrow-form">
            <div className="field">
              <label htmlFor={`${id}-product`}>Product</label>
              <select id={`${id}-product`} value={`${d}.${n}`} onChange={(e) => setChoice(e.target.value)}>
                {candidates.map((p) => (
                  <option key={`${p.domain}.${p.name}`} value={`${p.domain}.${p.name}`}>
                    {p.domain}.{p.name} — {p.title}
                  </option>
                ))}
              </select>
            </div>
            <RequestAccessForm key={`${d}.${n}`} domain={d!} product={n!} onCreated={onCreated} />
          </div>
        );
      }}
    </Async>
  );
}

export function AccessPage() {
  useTitle('Access');
  const session = useSession();
  const decider = session.admin || session.isOwner;
  const pending = useAsync(() => (decider ? listRequests('pending') : Promise.resolve([])), [decider]);
  const all = useAsync(() => listRequests(), []);
  const [ownFilter, setOwnFilter] = useState<Status | ''>('');
  const filterId = useId();

  const reload = () => {
    pending.reload();
    all.reload();
  };
  const mine = (all.data ?? []).filter((r) => r.requester === session.name);
  const others = (all.data ?? []).filter((r) => r.requester !== session.name && (!ownFilter || r.status === ownFilter));

  return (
    <>
      <div className="page-head">
        <h1>Access</h1>
        <p className="lead">
          A grant makes a product exist in your SQL sessions. Ask its owners for one, for a purpose; owners decide here.
        </p>
      </div>

      {decider ? (
        <section aria-labelledby="pending-h" className="panel">
          <h2 id="pending-h">Waiting for your decision</h2>
          <p className="help">
            Approving creates a grant to the requester, for the request's purpose, until the expiry you set (none: until
            revoked).
          </p>
          <Async state={pending} label="pending requests">
            {(rs) => <Pending requests={rs} reload={reload} />}
          </Async>
        </section>
      ) : null}

      <section aria-labelledby="mine-h" className="panel">
        <h2 id="mine-h">Your requests</h2>
        <Async state={all} label="your requests">
          {() => <RequestTable requests={mine} caption="Your access requests" showRequester={false} />}
        </Async>
      </section>

      <section aria-labelledby="new-h" className="panel">
        <h2 id="new-h">Ask for access</h2>
        <NewRequest onCreated={reload} />
      </section>

      {decider ? (
        <section aria-labelledby="others-h" className="panel">
          <h2 id="others-h">Requests for {session.admin ? 'every product' : 'your products'}</h2>
          <div className="field inline">
            <label htmlFor={filterId}>Status</label>
            <select id={filterId} value={ownFilter} onChange={(e) => setOwnFilter(e.target.value as Status | '')}>
              <option value="">any</option>
              <option value="pending">pending</option>
              <option value="approved">approved</option>
              <option value="denied">denied</option>
            </select>
          </div>
          <Async state={all} label="requests">
            {() => <RequestTable requests={others} caption="Requests for your products" showRequester />}
          </Async>
        </section>
      ) : null}
    </>
  );
}
