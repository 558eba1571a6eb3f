// The typed client of the catalog's REST API and the gateway's HTTP SQL endpoint.
// Every path, parameter and body below is checked against `schema.d.ts`, generated
// from the committed OpenAPI document (`npm run gen`), so an API change the portal
// does not follow fails `npm run check`.
import createClient, { type Middleware } from 'openapi-fetch';
import type { components, paths } from './schema';

export type Schemas = components['schemas'];
export type SignInIssuer = Schemas['SignInIssuer'];
export type AccessRequest = Schemas['AccessRequest'];
export type Change = Schemas['Change'];
export type ContractVersion = Schemas['ContractVersion'];
export type ContractVersionSummary = Schemas['ContractVersionSummary'];
export type Domain = Schemas['Domain'];
export type GatewayStatus = Schemas['GatewayStatus'];
export type Grant = Schemas['Grant'];
export type Health = Schemas['Health'];
export type Lineage = Schemas['Lineage'];
export type Mask = Schemas['Mask'];
export type MaskFunction = Schemas['MaskFunction'];
export type MaskSpec = Schemas['MaskSpec'];
export type Problem = Schemas['Problem'];
export type Product = Schemas['Product'];
export type ProductStatus = Schemas['ProductStatus'];
export type QualityResult = Schemas['QualityResult'];
export type QualityRun = Schemas['QualityRun'];
export type QueryResult = Schemas['QueryResult'];
export type RowFilter = Schemas['RowFilter'];
export type Subject = Schemas['Subject'];
export type Target = Schemas['Target'];
export type Team = Schemas['Team'];
export type UsageRecord = Schemas['UsageRecord'];
export type Verdict = Schemas['Verdict'];
export type Violation = Schemas['Violation'];
export type WhoAmI = Schemas['WhoAmI'];
export type Exemption = Schemas['Exemption'];

/** An error answer of the API (or of the way to it), as an RFC 9457 problem. */
export class ApiError extends Error {
  readonly problem: Problem;
  constructor(problem: Problem) {
    super(problem.detail ? `${problem.title}: ${problem.detail}` : problem.title);
    this.name = 'ApiError';
    this.problem = problem;
  }
  get status(): number {
    return this.problem.status;
  }
}

/** Turns whatever an error response carried into a problem. */
export function toProblem(error: unknown, response?: Response): Problem {
  const status = response?.status ?? 0;
  if (error && typeof error === 'object' && 'title' in error && 'status' in error) {
    return error as Problem;
  }
  if (error instanceof Error) {
    return { type: 'about:blank', title: 'The platform could not be reached', status, detail: error.message };
  }
  const text = typeof error === 'string' ? error.trim() : '';
  return {
    type: 'about:blank',
    title: response?.statusText || `HTTP ${status}`,
    status,
    detail: text ? text.slice(0, 2000) : null,
  };
}

let apiKey: string | null = null;

/** The key every request carries from now on (none: signed out). */
export function setApiKey(key: string | null): void {
  apiKey = key;
}

/** Listeners told when the platform refuses the current key (401). */
const unauthorizedListeners = new Set<() => void>();
export function onUnauthorized(listener: () => void): () => void {
  unauthorizedListeners.add(listener);
  return () => unauthorizedListeners.delete(listener);
}

const auth: Middleware = {
  onRequest({ request }) {
    if (apiKey && !request.headers.has('Authorization')) {
      request.headers.set('Authorization', `Bearer ${apiKey}`);
    }
    return request;
  },
  onResponse({ request, response }) {
    if (response.status === 401 && apiKey && request.headers.get('Authorization') === `Bearer ${apiKey}`) {
      for (const listener of unauthorizedListeners) listener();
    }
    return response;
  },
};

/** Same origin: the portal is served by the platform (and proxied by Vite in development). */
export const api = createClient<paths, 'application/json'>({ baseUrl: '' });
api.use(auth);

type Result<T> = { data?: T; error?: unknown; response: Response };

/** The data of a successful answer, or an ApiError carrying the problem. */
export async function unwrap<T>(call: Promise<Result<T>>): Promise<T> {
  let result: Result<T>;
  try {
    result = await call;
  } catch (e) {
    if (e instanceof DOMException && e.name === 'AbortError') throw e;
    throw new ApiError(toProblem(e));
  }
  if (result.error !== undefined || !result.response.ok) {
    throw new ApiError(toProblem(result.error, result.response));
  }
  return result.data as T;
}

/** Every item of a paged listing (`items` + `next_cursor`), following cursors. */
export async function fetchAll<T>(
  page: (cursor: string | undefined) => Promise<Result<{ items: T[]; next_cursor?: string | null }>>,
  max = 5000,
): Promise<T[]> {
  const out: T[] = [];
  let cursor: string | undefined;
  for (;;) {
    const data = await unwrap(page(cursor));
    out.push(...data.items);
    if (!data.next_cursor || out.length >= max) return out;
    cursor = data.next_cursor;
  }
}
