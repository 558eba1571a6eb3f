// The OpenAPI document served by the platform, rendered with Swagger UI (bundled:
// no request leaves the platform's origin). "Try it out" sends the signed-in key.
import { useEffect, useRef, useState } from 'react';
import SwaggerUIBundle from 'swagger-ui-dist/swagger-ui-es-bundle.js';
import 'swagger-ui-dist/swagger-ui.css';
import { ProblemView, useTitle } from '../components/common';
import { useSession } from '../session';

export default function ApiReference() {
  useTitle('API reference');
  const session = useSession();
  const ref = useRef<HTMLDivElement>(null);
  const [error, setError] = useState<unknown>(undefined);
  const key = session.key;

  useEffect(() => {
    if (!ref.current) return;
    try {
      SwaggerUIBundle({
        domNode: ref.current,
        url: '/api/v1/openapi.json',
        deepLinking: false,
        validatorUrl: null,
        tryItOutEnabled: false,
        defaultModelsExpandDepth: 0,
        docExpansion: 'list',
        requestInterceptor: (request: { url: string; headers: Record<string, string> }) => {
          const url = new URL(request.url, window.location.href);
          if (url.origin === window.location.origin && !request.headers.Authorization) {
            request.headers.Authorization = `Bearer ${key}`;
          }
          return request;
        },
      });
    } catch (e) {
      setError(e);
    }
  }, [key]);

  return (
    <>
      <div className="page-head">
        <h1>API reference</h1>
        <p className="lead">
          The REST API of the catalog and the SQL endpoint, from <a href="/api/v1/openapi.json">/api/v1/openapi.json</a>.
          “Try it out” calls the platform as you (<code>{session.name}</code>).
        </p>
      </div>
      {error !== undefined ? <ProblemView error={error} title="Swagger UI could not start" /> : null}
      <div ref={ref} className="swagger" />
    </>
  );
}
