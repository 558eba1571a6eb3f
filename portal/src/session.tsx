// The signed-in principal: its API key or access token (kept in
// sessionStorage, so it ends with the browser tab) and what GET /api/v1/whoami
// says it is. An access token comes back from the issuer's sign-in page to
// /signin/callback (see lib/oidc.ts).
import { createContext, useCallback, useContext, useEffect, useMemo, useState, type ReactNode } from 'react';
import { api, ApiError, onUnauthorized, setApiKey, unwrap, type Product, type WhoAmI } from './api/client';
import { useNavigate } from 'react-router';
import { finishSignIn, isCallback } from './lib/oidc';

const STORAGE_KEY = 'tessera.apiKey';

export interface Session {
  key: string;
  whoami: WhoAmI;
  name: string;
  admin: boolean;
  teams: string[];
  ownedDomains: string[];
  purposes: string[];
  /** Owners of at least one domain (or admins) see usage and decide access requests. */
  isOwner: boolean;
  /** Whether the principal owns this product (its team, or its domain's team). */
  owns: (product: Pick<Product, 'domain' | 'owner_team'>) => boolean;
}

interface SessionState {
  session: Session | null;
  /** True while a stored key is being checked at start-up. */
  restoring: boolean;
  /** Why the last sign-in ended (expired or revoked key). */
  notice: string | null;
  signIn: (key: string) => Promise<void>;
  signOut: (notice?: string) => void;
  refresh: () => Promise<void>;
}

const SessionContext = createContext<SessionState | null>(null);

function readStoredKey(): string | null {
  try {
    return sessionStorage.getItem(STORAGE_KEY);
  } catch {
    return null;
  }
}

function storeKey(key: string | null): void {
  try {
    if (key) sessionStorage.setItem(STORAGE_KEY, key);
    else sessionStorage.removeItem(STORAGE_KEY);
  } catch {
    // Storage refused (private mode): the session lasts until reload.
  }
}

function makeSession(key: string, whoami: WhoAmI): Session {
  const teams = whoami.teams;
  const ownedDomains = whoami.owned_domains;
  const admin = whoami.principal.admin;
  return {
    key,
    whoami,
    name: whoami.principal.name,
    admin,
    teams,
    ownedDomains,
    purposes: whoami.principal.attributes.purposes ?? [],
    isOwner: ownedDomains.length > 0 || teams.length > 0,
    owns: (p) => ownedDomains.includes(p.domain) || teams.includes(p.owner_team),
  };
}

async function fetchWhoami(key: string): Promise<WhoAmI> {
  return unwrap(api.GET('/api/v1/whoami', { headers: { Authorization: `Bearer ${key}` } }));
}

export function SessionProvider({ children }: { children: ReactNode }) {
  const [session, setSession] = useState<Session | null>(null);
  const [restoring, setRestoring] = useState<boolean>(() => readStoredKey() !== null || isCallback());
  const [notice, setNotice] = useState<string | null>(null);
  const navigate = useNavigate();

  const signOut = useCallback((why?: string) => {
    storeKey(null);
    setApiKey(null);
    setSession(null);
    setNotice(why ?? null);
  }, []);

  const signIn = useCallback(async (raw: string) => {
    const key = raw.trim();
    const whoami = await fetchWhoami(key);
    storeKey(key);
    setApiKey(key);
    setNotice(null);
    setSession(makeSession(key, whoami));
  }, []);

  const refresh = useCallback(async () => {
    if (!session) return;
    const whoami = await fetchWhoami(session.key);
    setSession(makeSession(session.key, whoami));
  }, [session]);

  useEffect(() => {
    if (!isCallback()) return;
    let live = true;
    finishSignIn(window.location.search)
      .then(async (token) => {
        if (live) await signIn(token);
      })
      .catch((e: unknown) => {
        if (!live) return;
        setNotice(
          e instanceof ApiError && e.status === 401
            ? `The platform does not accept this sign-in: ${e.message}`
            : e instanceof Error
              ? e.message
              : String(e),
        );
      })
      .finally(() => {
        if (!live) return;
        // The code in the address is spent: leave the callback page.
        navigate('/', { replace: true });
        setRestoring(false);
      });
    return () => {
      live = false;
    };
  }, [signIn, navigate]);

  useEffect(() => {
    const stored = readStoredKey();
    if (!stored || isCallback()) return;
    let live = true;
    fetchWhoami(stored)
      .then((whoami) => {
        if (!live) return;
        setApiKey(stored);
        setSession(makeSession(stored, whoami));
      })
      .catch((e: unknown) => {
        if (!live) return;
        if (e instanceof ApiError && e.status === 401) {
          storeKey(null);
          setNotice('Your API key is no longer accepted (expired or revoked). Sign in again.');
        } else {
          setNotice(e instanceof Error ? e.message : String(e));
        }
      })
      .finally(() => live && setRestoring(false));
    return () => {
      live = false;
    };
  }, []);

  useEffect(
    () => onUnauthorized(() => signOut('The platform no longer accepts your API key (expired or revoked). Sign in again.')),
    [signOut],
  );

  const value = useMemo(
    () => ({ session, restoring, notice, signIn, signOut, refresh }),
    [session, restoring, notice, signIn, signOut, refresh],
  );
  return <SessionContext.Provider value={value}>{children}</SessionContext.Provider>;
}

export function useSessionState(): SessionState {
  const state = useContext(SessionContext);
  if (!state) throw new Error('useSessionState outside SessionProvider');
  return state;
}

/** The signed-in session (the routes that use it are only rendered when signed in). */
export function useSession(): Session {
  const { session } = useSessionState();
  if (!session) throw new Error('useSession without a session');
  return session;
}
