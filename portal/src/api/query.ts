// SQL through the gateway's HTTP endpoint, as the signed-in principal.
import { api, unwrap, ApiError, type QueryResult } from './client';

export interface QueryOptions {
  purpose?: string | null;
  signal?: AbortSignal;
}

function header(purpose?: string | null) {
  return purpose ? { 'Tessera-Purpose': purpose } : {};
}

/** The most of a JSON result the console holds in memory; past it, CSV download is the way. */
export const MAX_RESULT_BYTES = 64 * 1024 * 1024;

/**
 * Runs one query and answers its JSON result; a failure after rows were sent throws
 * too. The result is read as a stream and refused past `maxBytes`, so that a huge
 * result cannot freeze the browser.
 */
export async function runQuery(sql: string, options: QueryOptions & { maxBytes?: number } = {}): Promise<QueryResult> {
  const maxBytes = options.maxBytes ?? MAX_RESULT_BYTES;
  const stream = await unwrap(
    api.POST('/api/v1/query', {
      params: { header: header(options.purpose) },
      body: { sql },
      headers: { Accept: 'application/json' },
      parseAs: 'stream',
      signal: options.signal,
    }),
  );
  if (!stream) throw new ApiError({ type: 'about:blank', title: 'Empty answer', status: 200 });
  const reader = stream.getReader();
  const decoder = new TextDecoder();
  const parts: string[] = [];
  let bytes = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    bytes += value.byteLength;
    if (bytes > maxBytes) {
      await reader.cancel();
      throw new ApiError({
        type: 'urn:tessera:portal:result-too-large',
        title: 'Result too large for the browser',
        status: 200,
        detail: `The result passed ${Math.round(maxBytes / 1024 / 1024)} MiB. Add a LIMIT or an aggregate, or download it as CSV.`,
      });
    }
    parts.push(decoder.decode(value, { stream: true }));
  }
  parts.push(decoder.decode());
  let result: QueryResult;
  try {
    result = JSON.parse(parts.join('')) as QueryResult;
  } catch {
    throw new ApiError({
      type: 'urn:tessera:portal:bad-result',
      title: 'The result could not be read',
      status: 200,
      detail: 'The answer was cut short or is not JSON.',
    });
  }
  if (result.error) throw new ApiError(result.error);
  return result;
}

/** Runs one query and answers its result as CSV (with a header row). */
export async function queryCsv(sql: string, options: QueryOptions = {}): Promise<Blob> {
  return unwrap(
    api.POST('/api/v1/query', {
      params: { header: header(options.purpose) },
      body: { sql },
      headers: { Accept: 'text/csv' },
      parseAs: 'blob',
      signal: options.signal,
    }),
  );
}

/** Offers a blob to the browser as a download. */
export function saveBlob(blob: Blob, filename: string): void {
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = filename;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}
