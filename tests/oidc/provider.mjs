// An OpenID Connect provider for Tessera's tests: `oidc-provider` (a certified
// implementation no one here wrote), on loopback, issuing RFC 9068 JWT access
// tokens for the audience `tessera` (resource `urn:tessera`) and, to be refused,
// for the audience `other` (resource `urn:other`).
//
//   node provider.mjs CONFIG.json
//
// CONFIG.json:
//   port       the port to listen on (127.0.0.1)
//   keys_dir   where signing keys live, one `<kid>.json` private JWK each
//              (made on first use)
//   kids       the key ids the provider publishes; the first signs. Restart
//              with other kids to rotate.
//   clients    [{ client_id, client_secret, claims, ttl_secs }]: clients of the
//              client-credentials grant; `claims` go into their access tokens
//   users      { <account id>: claims }: accounts of the authorization-code flow
//   redirect_uris  the public client `portal` (PKCE) may return to
//
// It prints `oidc-provider listening on <issuer>` once it serves.
import fs from 'node:fs';
import path from 'node:path';
import { exportJWK, generateKeyPair } from 'jose';
import Provider, { errors } from 'oidc-provider';

const config = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const issuer = `http://127.0.0.1:${config.port}`;

async function signingKey(kid) {
  const file = path.join(config.keys_dir, `${kid}.json`);
  if (fs.existsSync(file)) return JSON.parse(fs.readFileSync(file, 'utf8'));
  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  const jwk = { ...(await exportJWK(privateKey)), kid, alg: 'RS256', use: 'sig' };
  fs.mkdirSync(config.keys_dir, { recursive: true });
  fs.writeFileSync(file, JSON.stringify(jwk), { mode: 0o600 });
  return jwk;
}

const keys = [];
for (const kid of config.kids) keys.push(await signingKey(kid));
const clients = config.clients ?? [];
const byClient = Object.fromEntries(clients.map((c) => [c.client_id, c]));
const users = config.users ?? {};
const audiences = { 'urn:tessera': 'tessera', 'urn:other': 'other' };

const provider = new Provider(issuer, {
  jwks: { keys },
  clients: [
    ...clients.map((c) => ({
      client_id: c.client_id,
      client_secret: c.client_secret,
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
    })),
    {
      client_id: 'portal',
      token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code'],
      response_types: ['code'],
      redirect_uris: config.redirect_uris ?? ['http://127.0.0.1/'],
    },
  ],
  features: {
    clientCredentials: { enabled: true },
    devInteractions: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => 'urn:tessera',
      useGrantedResource: () => true,
      getResourceServerInfo: (ctx, resource, client) => {
        const audience = audiences[resource];
        if (!audience) throw new errors.InvalidTarget();
        return {
          audience,
          scope: 'query',
          accessTokenFormat: 'jwt',
          accessTokenTTL: byClient[client.clientId]?.ttl_secs ?? 600,
          jwt: { sign: { alg: 'RS256' } },
        };
      },
    },
  },
  extraTokenClaims: (ctx, token) => {
    if (token.accountId) return users[token.accountId] ?? {};
    return byClient[token.clientId]?.claims ?? {};
  },
  findAccount: (ctx, id) =>
    users[id] ? { accountId: id, claims: () => ({ sub: id, ...users[id] }) } : undefined,
  pkce: { required: () => true },
  // The portal (a browser app on another origin) exchanges its code here.
  clientBasedCORS: () => true,
  loadExistingGrant: async (ctx) => {
    // The test users consent to everything: no consent page.
    if (!ctx.oidc.session?.accountId) return undefined;
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId,
      accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope('openid');
    grant.addResourceScope('urn:tessera', 'query');
    await grant.save();
    return grant;
  },
});
provider.proxy = false;

provider.listen(config.port, '127.0.0.1', () => {
  console.log(`oidc-provider listening on ${issuer}`);
});
