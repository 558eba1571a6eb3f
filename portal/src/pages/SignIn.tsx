import { useEffect, useState, type FormEvent } from 'react';
import { api, ApiError, type SignInIssuer } from '../api/client';
import { ProblemView, useTitle } from '../components/common';
import { startSignIn } from '../lib/oidc';
import { useSessionState } from '../session';

/** The issuers the platform offers sign-in with (none: API keys only). */
function useIssuers(): SignInIssuer[] {
  const [issuers, setIssuers] = useState<SignInIssuer[]>([]);
  useEffect(() => {
    let live = true;
    api
      .GET('/api/v1/identity/issuers')
      .then(({ data }) => live && data && setIssuers(data))
      .catch(() => undefined);
    return () => {
      live = false;
    };
  }, []);
  return issuers;
}

export function SignIn() {
  const { signIn, notice } = useSessionState();
  const [key, setKey] = useState('');
  const [error, setError] = useState<unknown>(undefined);
  const [busy, setBusy] = useState(false);
  const issuers = useIssuers();
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
        {issuers.length > 0 ? (
          <div className="signin-issuers">
            {issuers.map((issuer) => (
              <button
                key={issuer.issuer}
                type="button"
                className="button primary"
                onClick={() => {
                  setError(undefined);
                  startSignIn(issuer).catch(setError);
                }}
              >
                Sign in with {new URL(issuer.issuer).host}
              </button>
            ))}
            <p className="help">Or with an API key:</p>
          </div>
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
