import { useId, useState, type FormEvent } from 'react';
import { Link } from 'react-router';
import { api, unwrap, type AccessRequest } from '../api/client';
import { useSession } from '../session';
import { ProblemView } from './common';

/** Asks a product's owners for access, for one purpose. */
export function RequestAccessForm({
  domain,
  product,
  onCreated,
}: {
  domain: string;
  product: string;
  onCreated?: (request: AccessRequest) => void;
}) {
  const session = useSession();
  const id = useId();
  const [purpose, setPurpose] = useState(session.purposes[0] ?? '');
  const [justification, setJustification] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(undefined);
  const [created, setCreated] = useState<AccessRequest | null>(null);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      const request = await unwrap(
        api.POST('/api/v1/domains/{domain}/products/{product}/access-requests', {
          params: { path: { domain, product } },
          body: { purpose: purpose.trim(), justification: justification.trim() },
        }),
      );
      setCreated(request);
      setJustification('');
      onCreated?.(request);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  const purposeUnlisted = purpose.trim() !== '' && !session.purposes.includes(purpose.trim());
  return (
    <form onSubmit={submit} className="stack" aria-label={`Request access to ${domain}.${product}`}>
      <div className="field">
        <label htmlFor={`${id}-purpose`}>Purpose</label>
        <input
          id={`${id}-purpose`}
          list={`${id}-purposes`}
          value={purpose}
          maxLength={64}
          required
          onChange={(e) => setPurpose(e.target.value)}
          aria-describedby={`${id}-purpose-help`}
        />
        <datalist id={`${id}-purposes`}>
          {session.purposes.map((p) => (
            <option key={p} value={p} />
          ))}
        </datalist>
        <p id={`${id}-purpose-help`} className="help">
          The grant holds for this purpose only; declare it when you query.{' '}
          {purposeUnlisted
            ? `Note: "${purpose.trim()}" is not among the purposes you may declare (${session.purposes.join(', ') || 'none'}); ask an admin to add it.`
            : session.purposes.length
              ? `You may declare: ${session.purposes.join(', ')}.`
              : 'You may not declare any purpose yet; ask an admin.'}
        </p>
      </div>
      <div className="field">
        <label htmlFor={`${id}-justification`}>Justification</label>
        <textarea
          id={`${id}-justification`}
          value={justification}
          maxLength={4000}
          rows={4}
          required
          onChange={(e) => setJustification(e.target.value)}
          aria-describedby={`${id}-justification-help`}
        />
        <p id={`${id}-justification-help`} className="help">
          What you need the data for; the product's owners read it when they decide.
        </p>
      </div>
      <div>
        <button type="submit" className="button primary" disabled={busy || !purpose.trim() || !justification.trim()}>
          {busy ? 'Sending…' : 'Request access'}
        </button>
      </div>
      {error !== undefined ? <ProblemView error={error} title="The request was not sent" /> : null}
      {created ? (
        <p className="success" role="status">
          Request #{created.id} sent to the owners of {created.domain}.{created.product} ({created.status}). Follow it on the{' '}
          <Link to="/access">Access</Link> page.
        </p>
      ) : null}
    </form>
  );
}
