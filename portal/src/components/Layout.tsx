import { useEffect, useRef } from 'react';
import { NavLink, Outlet, useLocation } from 'react-router';
import { useSession, useSessionState } from '../session';

/** Moves focus to the page's heading after each navigation, so screen readers announce it. */
function useFocusOnNavigate() {
  const location = useLocation();
  const previous = useRef(location.pathname);
  useEffect(() => {
    if (previous.current === location.pathname) return;
    previous.current = location.pathname;
    if (location.hash) return;
    const timer = window.setTimeout(() => {
      const heading = document.querySelector<HTMLElement>('main h1');
      if (heading) {
        heading.tabIndex = -1;
        heading.focus({ preventScroll: false });
      }
    }, 0);
    return () => window.clearTimeout(timer);
  }, [location.pathname]);
}

export function Layout() {
  const session = useSession();
  const { signOut } = useSessionState();
  useFocusOnNavigate();

  const roles: string[] = [];
  if (session.admin) roles.push('platform admin');
  if (session.ownedDomains.length) roles.push(`owner of ${session.ownedDomains.join(', ')}`);
  else if (session.teams.length) roles.push(`member of ${session.teams.join(', ')}`);
  if (!roles.length) {
    const groups = session.whoami.principal.attributes.groups ?? [];
    roles.push(groups.length ? `consumer (${groups.join(', ')})` : 'consumer');
  }

  return (
    <>
      <a className="skip-link" href="#main">
        Skip to main content
      </a>
      <header className="site-header">
        <div className="brand">
          <NavLink to="/" className="brand-link" aria-label="Tessera, mesh overview">
            <svg width="22" height="22" viewBox="0 0 22 22" aria-hidden="true" focusable="false">
              <rect x="1" y="1" width="9" height="9" rx="2" className="brand-tile a" />
              <rect x="12" y="1" width="9" height="9" rx="2" className="brand-tile b" />
              <rect x="1" y="12" width="9" height="9" rx="2" className="brand-tile b" />
              <rect x="12" y="12" width="9" height="9" rx="2" className="brand-tile a" />
            </svg>
            <span>Tessera</span>
          </NavLink>
        </div>
        <nav aria-label="Main" className="main-nav">
          <ul>
            <li>
              <NavLink to="/" end>
                Mesh
              </NavLink>
            </li>
            <li>
              <NavLink to="/console">SQL console</NavLink>
            </li>
            <li>
              <NavLink to="/access">Access</NavLink>
            </li>
            {session.isOwner || session.admin ? (
              <li>
                <NavLink to="/usage">Usage</NavLink>
              </li>
            ) : null}
            {session.admin ? (
              <li>
                <NavLink to="/governance">Governance</NavLink>
              </li>
            ) : null}
            <li>
              <NavLink to="/reference">API reference</NavLink>
            </li>
          </ul>
        </nav>
        <div className="whoami">
          <span className="whoami-name">
            <span className="visually-hidden">Signed in as </span>
            {session.whoami.principal.display_name || session.name}
          </span>
          <span className="whoami-roles">{roles.join(' · ')}</span>
          <button type="button" className="button small" onClick={() => signOut()}>
            Sign out
          </button>
        </div>
      </header>
      <main id="main" tabIndex={-1}>
        <Outlet />
      </main>
      <footer className="site-footer">
        <p>
          Tessera data mesh · signed in as <code>{session.name}</code>
          {session.purposes.length ? <> · purposes {session.purposes.join(', ')}</> : null}
        </p>
      </footer>
    </>
  );
}
