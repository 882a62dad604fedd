/**
 * rediss:// to a Redis with TLS. Whose certificate this client refuses: the Error says the
 * server's certificate was refused and why (the TLS error's code and reason), and what to do (a
 * private CA: NODE_EXTRA_CA_CERTS, as README.md and docs/API.md say; the URL's host: one the
 * certificate names), at once, not after requestTimeoutMs. Before, "cannot reach URL (self-signed
 * certificate): the connection opened, but a TLS handshake got no answer: is the server TLS?".
 * With the CA given, the start succeeds. The cases that need the CA given, or none, run
 * LockCoordinator.start in their own process (./start-child.ts: Node reads NODE_EXTRA_CA_CERTS at
 * startup only), and the rejection, or the stop, must leave nothing of the store in the event
 * loop, as ./handles.test.ts asks of any stop or failed start (before, over TLS, the socket's TLS
 * state, freed a turn after its close, was still there). A server that asks for a client
 * certificate (locksmith sends none) is said so too: before, the same "got no answer".
 */
import t from 'tap';
import { openStore } from '../../src/store/index.js';
import { RedisServer, noRedis } from './redis-server.js';
import { leftBehind, runStartChild, type Outcome } from './start-in.js';

/**
 * Runs start-child.ts (LockCoordinator.start with `url`, then stop) with NODE_EXTRA_CA_CERTS set
 * to `ca`, or unset (this machine's own may be set), SUDO_USER unset unless `more` sets it, and
 * waits for it to exit by itself.
 */
function startIn(url: string, ca: string | undefined, what: string, more: Record<string, string> = {}): Promise<Outcome> {
  const env = { ...process.env };
  delete env.NODE_EXTRA_CA_CERTS;
  delete env.SUDO_USER;
  if (ca !== undefined) env.NODE_EXTRA_CA_CERTS = ca;
  Object.assign(env, more);
  return runStartChild({ url, requestTimeoutMs: 20_000 }, what, env);
}

/** The advice for a private CA, as README.md and docs/API.md give it (what may follow in its parentheses left out). */
const GIVE_CA = 'if a private CA issued it, give Node the CA (a self-signed certificate is its own CA): NODE_EXTRA_CA_CERTS=/path/to/ca.pem in the environment of the mount or program (read once, at startup';

// A self-signed certificate for localhost (CN only, no alternative names); no client certificate
// asked for (locksmith sends none).
let tls: RedisServer;
t.before(async () => {
  if (!noRedis) tls = await RedisServer.start(['--tls-auth-clients', 'no'], { tls: true });
});
t.teardown(() => tls?.stop());

t.test('a self-signed certificate: not trusted, its code, and NODE_EXTRA_CA_CERTS; at once', { skip: noRedis }, async (t) => {
  const url = `rediss://u:s3cret@localhost:${tls.port}`;
  const t0 = performance.now();
  const err = await openStore({ url, requestTimeoutMs: 20_000 }).then(
    async (s) => {
      await s.close();
      return undefined;
    },
    (e: Error) => e,
  );
  const ms = performance.now() - t0;
  const m = err?.message ?? '';
  t.ok(m.startsWith(`locksmith store: cannot use rediss://u:***@localhost:${tls.port}: the server's certificate is not trusted (DEPTH_ZERO_SELF_SIGNED_CERT: self-signed certificate): no CA Node trusts issued it`), `says the certificate is not trusted, with its code (${m})`);
  t.ok(m.includes(GIVE_CA), 'says to give Node the CA with NODE_EXTRA_CA_CERTS');
  t.notMatch(m, /handshake got no answer|cannot reach/, 'not said to be out of reach');
  t.notMatch(m, /s3cret/, 'the password is not in the message');
  // The certificate is refused in the handshake: nothing waits for the 20 s budget.
  t.ok(ms < 20_000, `failed before requestTimeoutMs (${ms.toFixed(0)} ms)`);
});

t.test('LockCoordinator.start without the CA: the whole message, and nothing left in the event loop', { skip: noRedis }, async (t) => {
  const url = `rediss://localhost:${tls.port}`;
  const o = await startIn(url, undefined, 'a Redis with a self-signed certificate');
  t.equal(o.error, `locksmith store: cannot use ${url}: the server's certificate is not trusted (DEPTH_ZERO_SELF_SIGNED_CERT: self-signed certificate): no CA Node trusts issued it; ${GIVE_CA})`);
  leftBehind(t, o, 'the rejection');
});

t.test('LockCoordinator.start through sudo without the CA: says how to pass NODE_EXTRA_CA_CERTS through sudo', { skip: noRedis }, async (t) => {
  const url = `rediss://localhost:${tls.port}`;
  const o = await startIn(url, undefined, 'a Redis with a self-signed certificate, through sudo', { SUDO_USER: 'someone' });
  t.equal(o.error, `locksmith store: cannot use ${url}: the server's certificate is not trusted (DEPTH_ZERO_SELF_SIGNED_CERT: self-signed certificate): no CA Node trusts issued it; ${GIVE_CA}; through sudo: sudo --preserve-env=NODE_EXTRA_CA_CERTS ...)`);
  leftBehind(t, o, 'the rejection');
});

t.test('LockCoordinator.start with NODE_EXTRA_CA_CERTS naming another CA: said to be among those not trusted', { skip: noRedis }, async (t) => {
  const other = await RedisServer.start(['--tls-auth-clients', 'no'], { tls: true });
  t.teardown(() => other.stop());
  const url = `rediss://localhost:${tls.port}`;
  const o = await startIn(url, other.certFile, 'a Redis whose CA is not the one given');
  t.equal(
    o.error,
    `locksmith store: cannot use ${url}: the server's certificate is not trusted (DEPTH_ZERO_SELF_SIGNED_CERT: self-signed certificate): no CA Node trusts issued it (those in NODE_EXTRA_CA_CERTS=${other.certFile} included); ${GIVE_CA})`,
  );
  leftBehind(t, o, 'the rejection');
});

t.test('LockCoordinator.start with the CA in NODE_EXTRA_CA_CERTS: started', { skip: noRedis }, async (t) => {
  const o = await startIn(`rediss://localhost:${tls.port}`, tls.certFile, 'a Redis whose CA is given');
  t.equal(o.error, undefined, 'started');
  t.equal(o.stopped, true, 'stopped');
  leftBehind(t, o, 'stop() resolved');
});

t.test("the CA given, the URL's host not one the certificate names: said so, and which it names", { skip: noRedis }, async (t) => {
  // The certificate is for localhost; 127.0.0.1 is among none of its names (an IP address is
  // matched against its IP alternative names only).
  const url = `rediss://127.0.0.1:${tls.port}`;
  const o = await startIn(url, tls.certFile, 'a Redis whose certificate names another host');
  t.equal(
    o.error,
    `locksmith store: cannot use ${url}: the server's certificate does not name 127.0.0.1, the URL's host (ERR_TLS_CERT_ALTNAME_INVALID: Hostname/IP does not match certificate's altnames: IP: 127.0.0.1 is not in the cert's list): put a host it names in the URL (it names localhost), or give the server a certificate that names 127.0.0.1`,
  );
  leftBehind(t, o, 'the rejection');
});

t.test('the CA given, a Redis that asks for a client certificate: said so, and tls-auth-clients', { skip: noRedis }, async (t) => {
  // Redis's default with tls-ca-cert-file: a client certificate is required. The TLS 1.3 handshake
  // completes, then the server sends an alert or resets the connection (either comes first).
  const asking = await RedisServer.start([], { tls: true });
  t.teardown(() => asking.stop());
  const url = `rediss://localhost:${asking.port}`;
  const o = await startIn(url, asking.certFile, 'a Redis that asks for a client certificate');
  const fix = 'locksmith sends none; set tls-auth-clients no (or optional) on the Redis';
  const said = [
    `locksmith store: cannot use ${url}: the server asks for a client certificate (ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED): ${fix}`,
    ...['read ECONNRESET', 'write ECONNRESET', 'write EPIPE', 'closed'].map((why) => `locksmith store: cannot use ${url}: the server closed the connection right after the TLS handshake (${why}), as a Redis does that asks for a client certificate: ${fix}`),
  ];
  t.ok(said.includes(o.error ?? ''), `says it asks for a client certificate (${o.error})`);
  leftBehind(t, o, 'the rejection');
});
