import { useState, type FormEvent } from 'react';
import { ApiError } from '../api/client';
import { ProblemView, useTitle } from '../components/common';
import { useSessionState } from '../session';

export function SignIn() {
  const { signIn, notice } = useSessionState();
  const [key, setKey] = useState('');
  const [error, setError] = useState<unknown>(undefined);
  const [busy, setBusy] = useState(false);
  useTitle('Sign in');

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      await signIn(key);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  const refused = error instanceof ApiError && error.status === 401;
  return (
    <main id="main" className="signin">
      <div className="signin-card">
        <h1>Sign in to Tessera</h1>
        <p className="lead">
          The portal of the data mesh: find data products, read their contracts, ask for access and query them with SQL.
        </p>
        {notice ? (
          <p className="notice" role="status">
            {notice}
          </p>
        ) : null}
        <form onSubmit={submit} noValidate>
          <div className="field">
            <label htmlFor="api-key">API key</label>
            <input
              id="api-key"
              name="api-key"
              type="password"
              autoComplete="off"
              spellCheck={false}
              placeholder="tsk_…"
              value={key}
              onChange={(e) => setKey(e.target.value)}
              aria-describedby="api-key-help"
              aria-invalid={refused || undefined}
              required
            />
            <p id="api-key-help" className="help">
              A key of the form <code>tsk_&lt;id&gt;_&lt;secret&gt;</code>, from your platform admin (or printed by{' '}
              <code>tessera demo</code>). It is kept in this browser tab only, until you sign out or close it.
            </p>
          </div>
          <button type="submit" className="button primary" disabled={busy || !key.trim()}>
            {busy ? 'Signing in…' : 'Sign in'}
          </button>
        </form>
        {error !== undefined ? (
          refused ? (
            <div className="problem" role="alert">
              <p className="problem-title">This key is not accepted</p>
              <p className="problem-detail">It may be mistyped, expired or revoked.</p>
            </div>
          ) : (
            <ProblemView error={error} title="Could not sign in" />
          )
        ) : null}
      </div>
    </main>
  );
}
