// End-to-end checks of the portal in headless Chromium, against a running platform:
// every page as the personas of `tessera demo`, axe-core (no serious or critical
// violation), no request to any other origin, and the main flows (search, SQL,
// CSV, errors, access request and decision, governance, usage, API reference).
//
//   PORTAL_URL        where the portal is served (default http://127.0.0.1:5173:
//                     `npx vite` with TESSERA_URL pointing at the platform, or the
//                     platform itself once it serves the portal)
//   TESSERA_PERSONAS  the demo's personas.json (default .tessera/demo/personas.json
//                     of the repository root)
//   CHROMIUM          the browser (default /usr/bin/chromium)
//
// Run: npm run test:e2e
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { chromium } from 'playwright-core';

const require = createRequire(import.meta.url);
const AXE = fs.readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
const here = path.dirname(new URL(import.meta.url).pathname);
const BASE = (process.env.PORTAL_URL ?? 'http://127.0.0.1:5173').replace(/\/$/, '');
const PERSONAS = process.env.TESSERA_PERSONAS ?? path.join(here, '..', '..', '.tessera', 'demo', 'personas.json');
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const SHOTS = path.join(here, '..', 'test-results');

const origin = new URL(BASE).origin;
let browser;
let keys;

async function signedIn(persona, route = '/') {
  const context = await browser.newContext({ viewport: { width: 1366, height: 800 }, acceptDownloads: true });
  const page = await context.newPage();
  const problems = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && !/status of (4|5)\d\d/.test(m.text())) problems.push(`console: ${m.text()}`);
  });
  page.on('request', (r) => {
    const u = r.url();
    if (!u.startsWith('data:') && !u.startsWith('blob:') && new URL(u).origin !== origin) problems.push(`request to another origin: ${u}`);
  });
  await page.goto(`${BASE}/`);
  await page.getByLabel('API key').fill(keys[persona]);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await page.getByRole('button', { name: 'Sign out' }).waitFor();
  if (route !== '/') await page.goto(`${BASE}${route}`);
  await page.waitForLoadState('networkidle');
  return { page, context, problems };
}

async function axe(page, name, exclude = []) {
  await page.addScriptTag({ content: AXE });
  const result = await page.evaluate(
    async (exclude) => window.axe.run({ exclude: exclude.map((s) => [s]) }, { resultTypes: ['violations'] }),
    exclude,
  );
  const bad = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  fs.mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
  assert.deepEqual(
    bad.map((v) => `${v.impact} ${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(' ')).slice(0, 3).join(', ')})`),
    [],
    `axe on ${name}`,
  );
}

const ready = await (async () => {
  if (!fs.existsSync(PERSONAS)) return `no personas file at ${PERSONAS} (set TESSERA_PERSONAS)`;
  if (!fs.existsSync(CHROMIUM)) return `no browser at ${CHROMIUM} (set CHROMIUM)`;
  try {
    const r = await fetch(`${BASE}/api/v1/openapi.json`);
    if (!r.ok) return `${BASE}/api/v1/openapi.json answered ${r.status}`;
  } catch (e) {
    return `${BASE} is not reachable (${e.message})`;
  }
  return true;
})();

describe('portal', { skip: ready === true ? false : ready }, () => {
  before(async () => {
    keys = JSON.parse(fs.readFileSync(PERSONAS, 'utf8')).keys;
    // The browser's network is limited to loopback: everything else goes to a
    // proxy that does not exist (loopback always bypasses the proxy).
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--proxy-server=http://127.0.0.1:9', '--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1'],
    });
  });
  after(async () => {
    await browser?.close();
  });

  test('sign-in refuses a wrong key and passes axe', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${BASE}/`);
    await page.getByLabel('API key').fill('tsk_000000000000_' + '0'.repeat(64));
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.getByText('This key is not accepted').waitFor();
    await axe(page, 'signin');
    await context.close();
  });

  // With an OpenID Connect issuer configured (scripts/portal-e2e.sh runs
  // oidc-provider), the portal signs in there: authorization code with PKCE.
  test('signs in with the issuer: authorization code with PKCE', { skip: !process.env.PORTAL_OIDC_USER }, async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${BASE}/`);
    await page.getByRole('button', { name: /^Sign in with / }).click();
    // The issuer's own sign-in page (oidc-provider's development interactions).
    await page.locator('input[name="login"]').fill(process.env.PORTAL_OIDC_USER);
    await page.locator('input[name="password"]').fill('any password');
    await page.locator('button[type="submit"]').click();
    await page.getByRole('button', { name: 'Sign out' }).waitFor();
    assert.equal(new URL(page.url()).origin, origin, 'back in the portal');
    assert.equal(new URL(page.url()).pathname, '/', 'the callback page is left, its code spent');
    await page.getByRole('heading', { name: 'Mesh overview' }).waitFor();
    // The token is the credential: the catalog knows whom it stands for.
    const who = await page.evaluate(async () => {
      const token = sessionStorage.getItem('tessera.apiKey');
      const answer = await fetch('/api/v1/whoami', { headers: { Authorization: `Bearer ${token}` } });
      return { status: answer.status, body: await answer.json(), jwt: (token ?? '').split('.').length === 3 };
    });
    assert.equal(who.status, 200);
    assert.equal(who.body.principal.name, process.env.PORTAL_OIDC_USER);
    assert.ok(who.jwt, 'an access token, not an API key');
    // Coming back to the callback with a spent or foreign code says so.
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.goto(`${BASE}/signin/callback?code=forged&state=forged`);
    await page.getByText('start it again').waitFor();
    await context.close();
  });

  test('mesh overview: domains, products, search and filters', async () => {
    const { page, context, problems } = await signedIn('ana');
    await page.getByRole('heading', { name: 'Mesh overview' }).waitFor();
    for (const d of ['Customers', 'Sales', 'Supply']) await page.getByRole('heading', { name: new RegExp(`^${d}`) }).waitFor();
    await axe(page, 'overview');
    await page.getByLabel('Search').fill('order');
    await page.getByRole('link', { name: 'Orders' }).waitFor();
    await page.waitForFunction(() => !document.querySelector('a[href="/products/supply/part"]'));
    await page.getByLabel('Search').fill('');
    await page.getByRole('link', { name: 'Parts' }).waitFor();
    await page.getByLabel('Domain').selectOption('supply');
    await page.waitForFunction(() => !document.querySelector('a[href="/products/sales/orders"]'));
    await page.getByRole('link', { name: 'Parts' }).waitFor();
    assert.match(page.url(), /domain=supply/);
    assert.deepEqual(problems, []);
    await context.close();
  });

  test('product page: contract with masks, quality, history, lineage, snippets', async () => {
    const { page, context, problems } = await signedIn('admin', '/products/customers/customer');
    await page.getByRole('heading', { name: 'Customers', level: 1 }).waitFor();
    const row = page.getByRole('row', { name: /c_phone/ });
    await row.getByText('hashed').waitFor();
    await page.getByText('Row filters limit the rows you see').waitFor();
    await page.getByRole('heading', { name: 'Freshness', exact: true }).waitFor();
    await page.locator('#changes').getByText('v1.0.0').first().waitFor();
    await page.locator('svg.lineage a[href="/products/customers/nation"]').waitFor();
    const snippets = await page.locator('#connect pre').allInnerTexts();
    assert.equal(snippets.length, 3);
    for (const s of snippets) assert.ok(!s.includes(keys.admin), 'the key is elided in the snippets');
    await axe(page, 'product-admin');
    await page.locator('svg.lineage a[href="/products/customers/nation"]').click();
    await page.getByRole('heading', { name: 'Nations', level: 1 }).waitFor();
    assert.deepEqual(problems, []);
    await context.close();

    const ana = await signedIn('ana', '/products/customers/customer');
    await ana.page.getByRole('row', { name: /c_phone/ }).getByText('may be masked').waitFor();
    await axe(ana.page, 'product-analyst');
    await ana.context.close();
  });

  test('SQL console: result grid, paging, chart, CSV, errors', async () => {
    const { page, context, problems } = await signedIn('ana', '/console');
    await page.getByLabel('SQL').fill('SELECT c_mktsegment, count(*) AS n FROM customers.customer GROUP BY c_mktsegment ORDER BY n DESC');
    await page.getByLabel('Purpose').selectOption('analytics');
    await page.getByRole('button', { name: 'Run query' }).click();
    await page.locator('table.data tbody tr').first().waitFor();
    await axe(page, 'console-result');
    await page.getByText('Chart', { exact: true }).click();
    await page.locator('figure.chart svg rect').first().waitFor();
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Download CSV' }).click()]);
    const csv = fs.readFileSync(await download.path(), 'utf8');
    assert.match(csv, /^c_mktsegment,n/);
    await page.getByText('Table', { exact: true }).click();
    // Across domains, through the analyst's policies: customer names hashed.
    await page.getByLabel('SQL').fill(
      'SELECT c_name, o_orderkey, o_totalprice FROM customers.customer JOIN sales.orders ON c_custkey = o_custkey ORDER BY o_orderkey LIMIT 5',
    );
    await page.getByRole('button', { name: 'Run query' }).click();
    await page.locator('table.data thead th', { hasText: 'o_totalprice' }).waitFor();
    await page.locator('table.data tbody tr').nth(4).waitFor();
    const names = await page.locator('table.data tbody tr td:first-child').allTextContents();
    assert.equal(names.length, 5);
    for (const name of names) assert.match(name.trim(), /^[0-9a-f]{64}$/, `c_name is masked for ana: ${name}`);
    await axe(page, 'console-cross-domain');
    await page.getByLabel('SQL').fill('SELECT * FROM sales.orders');
    await page.getByLabel('SQL').press('Control+Enter');
    await page.getByText(/Page 1 of \d+/).waitFor();
    await page.getByRole('button', { name: 'Next' }).click();
    await page.getByText(/Page 2 of \d+/).waitFor();
    await page.getByLabel('SQL').fill('SELECT * FROM customers.nope');
    await page.getByRole('button', { name: 'Run query' }).click();
    await page.getByRole('alert').getByText('42P01').waitFor();
    await axe(page, 'console-error');
    assert.deepEqual(problems, []);
    await context.close();
  });

  test('access: a request, then the owner approves it', async () => {
    const justification = `e2e ${Date.now()}`;
    const nia = await signedIn('nia', '/products/customers/region');
    const form = nia.page.getByRole('form', { name: /Request access to customers.region/ });
    await form.getByLabel('Purpose').fill('analytics');
    await form.getByLabel('Justification').fill(justification);
    await form.getByRole('button', { name: 'Request access' }).click();
    await nia.page.getByText(/Request #\d+ sent/).waitFor();
    assert.deepEqual(nia.problems, []);
    await nia.context.close();

    const cora = await signedIn('cora', '/access');
    const card = cora.page.locator('li.card', { hasText: justification });
    await card.waitFor();
    await axe(cora.page, 'access-owner');
    await card.getByRole('button', { name: 'Approve' }).click();
    await card.waitFor({ state: 'detached' });
    assert.deepEqual(cora.problems, []);
    await cora.context.close();
  });

  test('governance (admin): policies, gateways, change log', async () => {
    const { page, context, problems } = await signedIn('admin', '/governance');
    await page.getByText('pii_hashed', { exact: true }).waitFor();
    await page.getByText(/^(SYNCED|STALE|NACKED)$/).first().waitFor();
    await page.locator('#changes table tbody tr').first().waitFor();
    await axe(page, 'governance');
    assert.deepEqual(problems, []);
    await context.close();

    const ana = await signedIn('ana');
    assert.equal(await ana.page.getByRole('link', { name: 'Governance' }).count(), 0);
    assert.equal(await ana.page.getByRole('link', { name: 'Usage' }).count(), 0);
    await ana.context.close();
  });

  test('usage (owner)', async () => {
    const { page, context, problems } = await signedIn('cora', '/usage?product=customers.customer');
    await page.getByRole('heading', { name: 'Usage', level: 1 }).waitFor();
    await page.waitForLoadState('networkidle');
    await axe(page, 'usage');
    assert.deepEqual(problems, []);
    await context.close();
  });

  test('API reference: Swagger UI from the platform, offline', async () => {
    const { page, context, problems } = await signedIn('ana', '/reference');
    await page.locator('.swagger-ui .opblock').first().waitFor({ timeout: 30000 });
    // Swagger UI's own markup is third-party; the page around it is checked.
    await axe(page, 'reference', ['.swagger']);
    assert.deepEqual(problems, []);
    await context.close();
  });

  test('keyboard: skip link, then the main navigation', async () => {
    const { page, context } = await signedIn('ana');
    const focused = () => page.evaluate(() => document.activeElement?.textContent?.trim() ?? '');
    await page.goto(`${BASE}/`);
    await page.getByRole('button', { name: 'Sign out' }).waitFor();
    await page.keyboard.press('Tab');
    assert.equal(await focused(), 'Skip to main content');
    await page.keyboard.press('Tab');
    assert.equal(await focused(), 'Tessera');
    await page.keyboard.press('Tab');
    assert.equal(await focused(), 'Mesh');
    await page.keyboard.press('Shift+Tab');
    await page.keyboard.press('Shift+Tab');
    await page.keyboard.press('Enter');
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'main');
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement?.labels?.[0]?.textContent), 'Search');
    await context.close();
  });
});
