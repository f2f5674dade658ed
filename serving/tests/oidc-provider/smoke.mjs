// Smoke test for server.mjs: starts it, runs the authorization code + PKCE flow
// through plain HTTP redirects with a tiny cookie jar, and checks the ID Token.
// Exits non-zero on any failure.  Usage: node smoke.mjs [--verbose]

import { spawn } from 'node:child_process';
import { createHash, createPublicKey, randomBytes, verify } from 'node:crypto';
import { once } from 'node:events';
import { createInterface } from 'node:readline';

const verbose = process.argv.includes('--verbose');
const CALLBACK = 'http://127.0.0.1:45678/auth/oidc/test/callback';
const CLIENT_ID = 'roi-test';
const CLIENT_SECRET = 'roi-test-secret';

const b64url = (buf) => Buffer.from(buf).toString('base64url');
const fail = (msg) => { throw new Error(msg); };
const expect = (cond, msg) => { if (!cond) fail(msg); };

// Minimal cookie jar: name/path/value, honours deletion, sends by path prefix.
class Jar {
  cookies = new Map();

  store(res) {
    for (const line of res.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(';').map((s) => s.trim());
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq);
      const value = pair.slice(eq + 1);
      const attr = Object.fromEntries(attrs.map((a) => {
        const [k, ...v] = a.split('=');
        return [k.toLowerCase(), v.join('=')];
      }));
      const path = attr.path || '/';
      const expired = attr.expires && Date.parse(attr.expires) <= Date.now();
      const key = `${name};${path}`;
      if (expired || value === '') this.cookies.delete(key);
      else this.cookies.set(key, { name, value, path });
    }
  }

  header(url) {
    const { pathname } = new URL(url);
    return [...this.cookies.values()]
      .filter((c) => pathname.startsWith(c.path))
      .map((c) => `${c.name}=${c.value}`)
      .join('; ');
  }
}

async function startServer() {
  const child = spawn(process.execPath, ['server.mjs', '--port', '0'], {
    cwd: new URL('.', import.meta.url),
    stdio: ['ignore', 'pipe', verbose ? 'inherit' : 'ignore'],
  });
  const timer = setTimeout(() => child.kill(), 10_000);
  const [line] = await Promise.race([
    once(createInterface({ input: child.stdout }), 'line'),
    once(child, 'exit').then(() => fail('server exited before printing its issuer')),
  ]);
  clearTimeout(timer);
  const match = /^OIDC_ISSUER=(http:\/\/127\.0\.0\.1:\d+)$/.exec(line);
  expect(match, `unexpected startup line: ${line}`);
  return { child, issuer: match[1] };
}

// Follows redirects by hand until one points at CALLBACK; returns its query and the hops.
async function authorize(discovery, jar, extraParams) {
  const verifier = b64url(randomBytes(32));
  const state = b64url(randomBytes(16));
  const nonce = b64url(randomBytes(16));
  const params = new URLSearchParams({
    response_type: 'code',
    client_id: CLIENT_ID,
    redirect_uri: CALLBACK,
    scope: 'openid email profile',
    state,
    nonce,
    code_challenge: b64url(createHash('sha256').update(verifier).digest()),
    code_challenge_method: 'S256',
  });
  for (const [k, v] of Object.entries(extraParams)) {
    if (v === undefined) params.delete(k); else params.set(k, v);
  }

  let url = `${discovery.authorization_endpoint}?${params}`;
  const hops = [];
  for (let i = 0; i < 10; i += 1) {
    const res = await fetch(url, { redirect: 'manual', headers: { cookie: jar.header(url) } });
    jar.store(res);
    const location = res.headers.get('location');
    const { pathname } = new URL(url);
    hops.push(`${res.status} ${pathname} -> ${location ? new URL(location, url).pathname : '(none)'}`);
    expect(res.status >= 300 && res.status < 400 && location,
      `expected a redirect from ${pathname}, got ${res.status}: ${await res.text()}`);
    const next = new URL(location, url);
    if (next.href.startsWith(`${CALLBACK}?`)) {
      return { query: next.searchParams, state, nonce, verifier, hops };
    }
    url = next.href;
  }
  return fail(`too many redirects: ${hops.join(', ')}`);
}

async function redeem(discovery, code, verifier, method) {
  const body = new URLSearchParams({
    grant_type: 'authorization_code', code, redirect_uri: CALLBACK, code_verifier: verifier,
  });
  const headers = { 'content-type': 'application/x-www-form-urlencoded' };
  if (method === 'client_secret_basic') {
    headers.authorization = `Basic ${Buffer.from(`${CLIENT_ID}:${CLIENT_SECRET}`).toString('base64')}`;
  } else {
    body.set('client_id', CLIENT_ID);
    body.set('client_secret', CLIENT_SECRET);
  }
  const res = await fetch(discovery.token_endpoint, { method: 'POST', headers, body });
  const json = await res.json();
  expect(res.status === 200, `token endpoint (${method}) returned ${res.status}: ${JSON.stringify(json)}`);
  return json;
}

function checkIdToken(idToken, jwks) {
  const [h, p, s] = idToken.split('.');
  const header = JSON.parse(Buffer.from(h, 'base64url'));
  expect(header.alg === 'RS256', `id_token alg is ${header.alg}`);
  const jwk = jwks.keys.find((k) => k.kid === header.kid);
  expect(jwk, `no JWKS key with kid ${header.kid}`);
  const ok = verify('sha256', Buffer.from(`${h}.${p}`), createPublicKey({ key: jwk, format: 'jwk' }), Buffer.from(s, 'base64url'));
  expect(ok, 'id_token signature does not verify');
  return JSON.parse(Buffer.from(p, 'base64url'));
}

async function login(ctx, jar, loginHint, method) {
  const { query, state, nonce, verifier, hops } = await authorize(ctx.discovery, jar, { login_hint: loginHint });
  expect(!query.has('error'), `authorization error: ${query}`);
  expect(query.get('state') === state, 'state mismatch');
  expect(query.get('iss') === ctx.issuer, `iss parameter is ${query.get('iss')}`);
  const tokens = await redeem(ctx.discovery, query.get('code'), verifier, method);
  const claims = checkIdToken(tokens.id_token, ctx.jwks);
  const email = loginHint;
  expect(claims.iss === ctx.issuer, `iss claim is ${claims.iss}`);
  expect(claims.aud === CLIENT_ID, `aud claim is ${JSON.stringify(claims.aud)}`);
  expect(claims.nonce === nonce, 'nonce mismatch');
  expect(claims.sub === `sub-${email}`, `sub claim is ${claims.sub}`);
  expect(claims.email === email, `email claim is ${claims.email}`);
  expect(claims.name === email.split('@')[0], `name claim is ${claims.name}`);
  expect(claims.email_verified === !email.startsWith('unverified'), `email_verified is ${claims.email_verified}`);

  const me = await fetch(ctx.discovery.userinfo_endpoint, {
    headers: { authorization: `Bearer ${tokens.access_token}` },
  }).then((r) => r.json());
  expect(me.email === email && me.sub === claims.sub, `userinfo returned ${JSON.stringify(me)}`);

  if (verbose) console.log(hops.map((x) => `  ${x}`).join('\n'), '\n  id_token:', claims);
  return hops;
}

async function expectAuthError(ctx, jar, params, error) {
  const { query } = await authorize(ctx.discovery, jar, params);
  expect(query.get('error') === error, `expected error=${error}, got: ${query}`);
}

const { child, issuer } = await startServer();
let failed = false;
try {
  const discovery = await fetch(`${issuer}/.well-known/openid-configuration`).then((r) => r.json());
  expect(discovery.issuer === issuer, `discovery issuer is ${discovery.issuer}`);
  const jwks = await fetch(discovery.jwks_uri).then((r) => r.json());
  const ctx = { issuer, discovery, jwks };

  const steps = [
    ['ann, client_secret_post', () => login(ctx, new Jar(), 'ann@example.com', 'client_secret_post')],
    ['unverified-bob, client_secret_basic', () => login(ctx, new Jar(), 'unverified-bob@example.com', 'client_secret_basic')],
    ['one jar: ann, ann again, then carol', async () => {
      const jar = new Jar();
      await login(ctx, jar, 'ann@example.com', 'client_secret_basic');
      const again = await login(ctx, jar, 'ann@example.com', 'client_secret_basic');
      expect(again.length === 1, `a second login for the same user should not need an interaction: ${again}`);
      await login(ctx, jar, 'carol@example.com', 'client_secret_post');
    }],
    ['no login_hint -> login_required', () => expectAuthError(ctx, new Jar(), {}, 'login_required')],
    ['no code_challenge -> invalid_request', () => expectAuthError(ctx, new Jar(), {
      login_hint: 'ann@example.com', code_challenge: undefined, code_challenge_method: undefined,
    }, 'invalid_request')],
    ['non-loopback redirect_uri rejected', async () => {
      const url = new URL(discovery.authorization_endpoint);
      url.search = new URLSearchParams({
        response_type: 'code', client_id: CLIENT_ID, redirect_uri: 'http://example.com/cb', scope: 'openid',
      });
      const res = await fetch(url, { redirect: 'manual' });
      expect(res.status === 400, `expected 400, got ${res.status}`);
    }],
  ];
  for (const [name, run] of steps) {
    await run();
    console.log(`ok - ${name}`);
  }
} catch (err) {
  failed = true;
  console.error(`FAIL: ${err.message}`);
} finally {
  child.kill('SIGTERM');
  const [code] = await once(child, 'exit');
  if (code !== 0) {
    failed = true;
    console.error(`FAIL: server exited with ${code} on SIGTERM`);
  }
}
process.exit(failed ? 1 : 0);
