// Signing in with an OpenID Connect issuer: the authorization-code flow with
// PKCE (RFC 7636), the portal being a public client. The verifier and state
// live in sessionStorage between leaving for the issuer and coming back to
// /signin/callback; the access token is then used like an API key.
import type { SignInIssuer } from '../api/client';

const PENDING = 'tessera.oidc.pending';
export const CALLBACK_PATH = '/signin/callback';

interface Pending {
  verifier: string;
  state: string;
  issuer: SignInIssuer;
}

function base64url(bytes: Uint8Array): string {
  let text = '';
  for (const b of bytes) text += String.fromCharCode(b);
  return btoa(text).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function random(bytes: number): string {
  return base64url(crypto.getRandomValues(new Uint8Array(bytes)));
}

export function callbackUri(): string {
  return `${window.location.origin}${CALLBACK_PATH}`;
}

/** Leaves for the issuer's sign-in page. */
export async function startSignIn(issuer: SignInIssuer): Promise<void> {
  const verifier = random(32);
  const state = random(16);
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier));
  const pending: Pending = { verifier, state, issuer };
  sessionStorage.setItem(PENDING, JSON.stringify(pending));
  const url = new URL(issuer.authorization_endpoint);
  url.searchParams.set('response_type', 'code');
  url.searchParams.set('client_id', issuer.client_id);
  url.searchParams.set('redirect_uri', callbackUri());
  url.searchParams.set('scope', issuer.scope);
  url.searchParams.set('state', state);
  url.searchParams.set('code_challenge', base64url(new Uint8Array(digest)));
  url.searchParams.set('code_challenge_method', 'S256');
  if (issuer.resource) url.searchParams.set('resource', issuer.resource);
  window.location.assign(url.toString());
}

/** Whether this page is the issuer sending the browser back. */
export function isCallback(): boolean {
  return window.location.pathname === CALLBACK_PATH;
}

/** The access token the issuer's answer on the callback page is worth. */
export async function finishSignIn(search: string): Promise<string> {
  const params = new URLSearchParams(search);
  const stored = sessionStorage.getItem(PENDING);
  sessionStorage.removeItem(PENDING);
  const error = params.get('error');
  if (error) throw new Error(`The issuer did not sign you in: ${params.get('error_description') ?? error}.`);
  const pending = stored ? (JSON.parse(stored) as Pending) : null;
  const code = params.get('code');
  if (!pending || !code || params.get('state') !== pending.state) {
    throw new Error('This sign-in was not started from this tab, or was already used: start it again.');
  }
  const body = new URLSearchParams({
    grant_type: 'authorization_code',
    code,
    redirect_uri: callbackUri(),
    client_id: pending.issuer.client_id,
    code_verifier: pending.verifier,
  });
  if (pending.issuer.resource) body.set('resource', pending.issuer.resource);
  const response = await fetch(pending.issuer.token_endpoint, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json' },
    body,
  });
  const answer = (await response.json().catch(() => ({}))) as { access_token?: string; error_description?: string; error?: string };
  if (!response.ok || !answer.access_token) {
    throw new Error(`The issuer gave no access token: ${answer.error_description ?? answer.error ?? response.statusText}.`);
  }
  return answer.access_token;
}
