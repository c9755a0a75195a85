// node-oidc-provider as a peer for `bench/run.py --peer node-oidc-provider` (bench only).
//
// One process on 127.0.0.1, the default in-memory adapter, one RSA-2048 key generated at start,
// and one confidential client (client_secret_basic). What a refresh does here is what
// authserver's refresh does: rotate the refresh token (a reused one fails) and sign one RS256
// JWT access token (RFC 9068, typ at+jwt) for the resource BENCH_RESOURCE. No `openid` scope,
// so no ID token is signed beside it.
//
// node-oidc-provider has no password grant. The chains' first refresh tokens come from the
// grant BENCH_LOGIN_GRANT registered below, bench only: the client authenticates as for any
// grant, sends `username` and the benchmark's `password`, and gets a refresh token of a new
// grant for that account (no access token: the load generator only needs the refresh token).
//
// Configuration, from the environment (run.py sets it; nothing on the command line):
//   BENCH_PORT, BENCH_CLIENT_ID, BENCH_CLIENT_SECRET, BENCH_PASSWORD
// Prints `ready <issuer>` on standard output once it listens.

import * as crypto from 'node:crypto';

import Provider, { errors } from 'oidc-provider';

const HOST = '127.0.0.1';
const LOGIN_GRANT = 'urn:authserver:bench:login';
const RESOURCE = 'urn:authserver:bench:api';
const SCOPE = 'read';
// authserver's defaults: ACCESS_TOKEN_TTL, REFRESH_TOKEN_TTL, REFRESH_FAMILY_MAX_AGE (seconds).
const ACCESS_TOKEN_TTL = 900;
const REFRESH_TOKEN_TTL = 604_800;
const FAMILY_MAX_AGE = 2_592_000;

function required(name) {
  const value = process.env[name];
  if (!value) {
    console.error(`server.mjs: ${name} is not set`);
    process.exit(2);
  }
  return value;
}

const port = Number(required('BENCH_PORT'));
const clientId = required('BENCH_CLIENT_ID');
const clientSecret = required('BENCH_CLIENT_SECRET');
const password = Buffer.from(required('BENCH_PASSWORD'));
const issuer = `http://${HOST}:${port}`;

const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const jwk = privateKey.export({ format: 'jwk' });
jwk.kid = crypto.createHash('sha256').update(jwk.n).digest('base64url').slice(0, 16);
jwk.alg = 'RS256';
jwk.use = 'sig';

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: clientId,
      client_secret: clientSecret,
      token_endpoint_auth_method: 'client_secret_basic',
      grant_types: ['refresh_token', LOGIN_GRANT],
      response_types: [],
      redirect_uris: [],
    },
  ],
  jwks: { keys: [jwk] },
  cookies: { keys: [crypto.randomBytes(32).toString('base64url')] },
  features: {
    devInteractions: { enabled: false },
    resourceIndicators: {
      enabled: true,
      defaultResource: async () => RESOURCE,
      useGrantedResource: async () => true,
      getResourceServerInfo: async (_ctx, resource) => {
        if (resource !== RESOURCE) throw new errors.InvalidTarget();
        return {
          scope: SCOPE,
          audience: RESOURCE,
          accessTokenTTL: ACCESS_TOKEN_TTL,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'RS256' } },
        };
      },
    },
  },
  // Every refresh rotates (the default rotates only public or sender-constrained clients').
  rotateRefreshToken: () => true,
  findAccount: async (_ctx, sub) => ({ accountId: sub, claims: async () => ({ sub }) }),
  ttl: { AccessToken: ACCESS_TOKEN_TTL, RefreshToken: REFRESH_TOKEN_TTL, Grant: FAMILY_MAX_AGE },
});

function passwordMatches(given) {
  const bytes = Buffer.from(String(given ?? ''));
  return bytes.length === password.length && crypto.timingSafeEqual(bytes, password);
}

provider.registerGrantType(
  LOGIN_GRANT,
  async (ctx) => {
    const { params, client } = ctx.oidc;
    if (!params.username || !passwordMatches(params.password)) {
      throw new errors.InvalidGrant('wrong username or password');
    }
    const accountId = String(params.username);
    const grant = new provider.Grant({ accountId, clientId: client.clientId });
    grant.addResourceScope(RESOURCE, SCOPE);
    const grantId = await grant.save();
    const refreshToken = new provider.RefreshToken({
      accountId,
      client,
      grantId,
      gty: LOGIN_GRANT,
      resource: RESOURCE,
      rotations: 0,
      scope: SCOPE,
    });
    ctx.body = {
      refresh_token: await refreshToken.save(),
      scope: SCOPE,
      token_type: 'Bearer',
    };
  },
  ['username', 'password'],
);

provider.on('server_error', (_ctx, error) => console.error('server_error', error));

provider.listen(port, HOST, () => {
  console.log(`ready ${issuer}`);
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => process.exit(0)); // nothing to flush: everything is in memory
}
