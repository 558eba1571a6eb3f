import { lazy, Suspense } from 'react';
import { BrowserRouter, Route, Routes } from 'react-router';
import { Layout } from './components/Layout';
import { Loading } from './components/common';
import { SessionProvider, useSessionState } from './session';
import { SignIn } from './pages/SignIn';
import { Overview } from './pages/Overview';
import { ProductPage } from './pages/Product';
import { Console } from './pages/Console';
import { AccessPage } from './pages/Access';
import { Governance } from './pages/Governance';
import { Usage } from './pages/Usage';
import { NotFound } from './pages/NotFound';

// Swagger UI is large: it is loaded only when the API reference is opened.
const ApiReference = lazy(() => import('./pages/ApiReference'));

function Routed() {
  const { session, restoring } = useSessionState();
  if (restoring) {
    return (
      <main id="main" className="centered">
        <Loading label="Signing you in…" />
      </main>
    );
  }
  if (!session) return <SignIn />;
  return (
    <Routes>
      <Route element={<Layout />}>
        <Route index element={<Overview />} />
        <Route path="products/:domain/:product" element={<ProductPage />} />
        <Route path="console" element={<Console />} />
        <Route path="access" element={<AccessPage />} />
        <Route path="usage" element={<Usage />} />
        <Route path="governance" element={<Governance />} />
        <Route
          path="reference"
          element={
            <Suspense fallback={<Loading label="Loading the API reference…" />}>
              <ApiReference />
            </Suspense>
          }
        />
        <Route path="*" element={<NotFound />} />
      </Route>
    </Routes>
  );
}

export function App() {
  return (
    <BrowserRouter>
      <SessionProvider>
        <Routed />
      </SessionProvider>
    </BrowserRouter>
  );
}
