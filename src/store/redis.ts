/**
 * The Redis engine: the scripts of ./lua.ts over one ioredis connection (EVALSHA), plus one
 * dedicated connection per inbox reader (XREAD BLOCK 0, nothing else may run on it). A script
 * the engine does not know (a new server process: a restart, a failover; or SCRIPT FLUSH) is
 * loaded by EVAL only after RUN_CHECK (lua.ts RUN): data older than the engine's run is dropped
 * before any step can apply to it. OPEN and RENEW make that check themselves.
 *
 * Connections: commands time out after requestTimeoutMs (a reply that never comes is an
 * 'unreachable' reply, never a hang); a command in flight when the connection drops fails at once
 * and is not sent again (its outcome is unknown: the caller sees 'unreachable' and the step id); the
 * inbox connection does resend its XREAD after a reconnect, with the same last id: that is how it
 * resumes.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import { Redis, type RedisOptions } from 'ioredis';
import { COMMIT, CYCLE, EMPTY, END, FILE_REACH, LOAD, OPEN, POLICY, REACH, REAP, REASSERT, RENEW, RUN_CHECK, SESSION_FILES, SPACE_READ } from './lua.js';
import { ProgrammingError } from './memory.js';
import { SECRET_PARAM, urlDatabase } from './options.js';
import { engineAddress, probeEngine, refusedText, silenceText, TLS_ONLY } from './probe.js';
import { bySeq, decodeRecord, encodeRecord } from './step.js';
import type {
  Change,
  CommitReply,
  DeadSession,
  EdgeInput,
  Engine,
  EngineStep,
  FileReach,
  StoredEdges,
  FileState,
  InboxEvent,
  InboxReader,
  Opened,
  Taken,
  ReapReply,
  ReassertReply,
  Renewed,
  SessionFilesPage,
  SessionRef,
  StoreRecord,
  SessionServes,
  SessionsRead,
} from './types.js';

type Reply = string | number | null | Reply[];
type Script = (...args: (string | number)[]) => Promise<Reply>;

/** The scripts that check the engine's run themselves (OPEN, RENEW), and the bench's floor: ioredis' EVALSHA, EVAL when the engine does not know them. */
interface Scripted {
  lsOpen: Script;
  lsRenew: Script;
  lsEmpty: Script;
}

/** A script sent by EVALSHA only: one the engine does not know is loaded after RUN_CHECK (RedisEngine.call). */
interface Gated {
  readonly lua: string;
  readonly sha: string;
}

/**
 * `lua` as the scripts of one namespace: the engine's script cache is the server's, shared by
 * every namespace on it, so a script another namespace's run check loaded on a new server process
 * would run here unchecked (behind a proxy that hid the restart: no close, no NOSCRIPT). A first
 * line naming the namespace makes its scripts its own (their SHA1s differ).
 */
function gated(lua: string, namespace: string): Gated {
  const text = `-- locksmith namespace ${namespace}${lua.startsWith('\n') ? '' : '\n'}${lua}`;
  return { lua: text, sha: createHash('sha1').update(text).digest('hex') };
}

/** Every other script: a step, a read or a listing of the namespace's data. */
const GATED_LUA = { lsCommit: COMMIT, lsReassert: REASSERT, lsEnd: END, lsLoad: LOAD, lsCycle: CYCLE, lsReach: REACH, lsFileReach: FILE_REACH, lsReap: REAP, lsSessionFiles: SESSION_FILES, lsPolicy: POLICY };
type GatedName = keyof typeof GATED_LUA;

type ScriptName = keyof Scripted | GatedName;

/** The engine's answer to EVALSHA of a script it does not have. */
const isNoScript = (e: unknown): boolean => (e as { name?: string })?.name === 'ReplyError' && (e as Error).message.startsWith('NOSCRIPT');

export interface RedisEngineOptions {
  url: string;
  /** The URL for messages (password hidden). */
  shownUrl: string;
  namespace: string;
  requestTimeoutMs: number;
}

let connections = 0;

/** The wait before reconnect attempt `times`: 50 ms, doubling up to 1 s. */
function backoff(times: number): number {
  return Math.min(25 * 2 ** Math.min(times, 6), 1_000);
}

function clientOptions(o: RedisEngineOptions, inbox: boolean, name = `locksmith-${inbox ? 'inbox' : 'store'}-${process.pid}-${++connections}`): RedisOptions {
  return {
    lazyConnect: true,
    connectTimeout: o.requestTimeoutMs,
    // A blocked XREAD must not time out; every other command must.
    commandTimeout: inbox ? undefined : o.requestTimeoutMs,
    autoResendUnfulfilledCommands: inbox,
    maxRetriesPerRequest: null,
    retryStrategy: backoff,
    // A socket we end is destroyed at once (closeNow), never given the default 2 s to close: a
    // client ended while it waited to reconnect keeps the timer for its closed socket only this long.
    disconnectTimeout: 0,
    disableClientInfo: true,
    // CLIENT SETNAME on every (re)connect: what CLIENT LIST shows, and how a test finds it.
    connectionName: name,
  };
}

/**
 * Ends a client now and resolves once nothing of it is left in the event loop (a library's failed
 * start or stop must not hold the process up): no reconnect, its socket destroyed, and closed.
 * ioredis's disconnect() alone ends a live socket gracefully and leaves a timer until it closes;
 * on a socket that had already closed (a refused or dropped connection) the timer waited its
 * whole 2 s for a 'close' that had come before.
 */
async function closeNow(c: Redis): Promise<void> {
  await endNow(c);
  // A TLS socket frees its TLS state on the turn after its close (a setImmediate of Node's, queued
  // in its 'close', which came before the client's end): gone once a turn queued now has come.
  if (c.stream instanceof TLSSocket) await new Promise<void>((r) => setImmediate(r));
}

/** closeNow up to the close of the client's last socket (whose TLS state is freed a turn later). */
function endNow(c: Redis): Promise<void> {
  if (c.status === 'end') return Promise.resolve();
  // 'wait': never connected; 'reconnecting': its last socket has closed, the reconnect is cancelled
  // (the disconnect timer left for that closed socket lasts disconnectTimeout, 0 here).
  if (c.status === 'wait' || c.status === 'reconnecting') {
    const waiting = c.status === 'reconnecting';
    c.disconnect();
    // A client waiting to reconnect keeps the calls made meanwhile in its queue, each with its
    // command timer (requestTimeoutMs): disconnect() cancels the reconnect but neither settles
    // them nor ends the client (its socket's close, which would, came before). Done here as the
    // client does when it ends by itself (ioredis's close: status 'end', its queues flushed).
    if (waiting) {
      const inner = c as unknown as { setStatus(s: string): void; flushQueue(e: Error): void };
      inner.setStatus('end');
      inner.flushQueue(new Error('Connection is closed.'));
    }
    return Promise.resolve();
  }
  // A socket open or opening: the client ends once its close has come.
  const ended = new Promise<void>((r) => c.once('end', () => r()));
  c.disconnect();
  (c.stream as Socket | undefined)?.destroy();
  return ended;
}

/** `p`, or an Error after `ms` (the timer is cleared either way). */
async function within<T>(p: Promise<T>, ms: number, what: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(what())), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Error replies that say the engine refused us (authentication, rights, database), not that it was out of reach. */
const REFUSAL = /^(WRONGPASS|NOAUTH|NOPERM|ERR )/;

/**
 * What the engine refused: the credentials (a wrong password), to serve without them, or else
 * the connection's setup (a database it does not have, a command the user may not run). Not
 * "refused the connection", which is said of a port nothing listens on (probe.ts refusedText).
 */
function refused(why: string): string {
  if (/^WRONGPASS|^ERR invalid (username-)?password/.test(why)) return 'refused the credentials';
  if (why.startsWith('NOAUTH')) return 'refused to serve without credentials';
  if (/^ERR (DB index|invalid DB index)/i.test(why)) return "has no such database (the URL's /N or ?db=N)";
  return 'refused the connection';
}

/** What to do about a refusal, where the engine's own words do not say it (NOAUTH speaks of HELLO). */
function refusalHint(why: string): string {
  if (why.startsWith('NOAUTH')) return ' (the engine asks for a password: put it in the URL, redis://:PASSWORD@HOST:PORT, or redis://USER:PASSWORD@HOST:PORT for an ACL user)';
  if (why.startsWith('WRONGPASS')) return " (check the user and password in the URL; a password with '@', '/', '#', '%' or ':' is written percent-encoded)";
  return '';
}

/**
 * A client for the URL (not yet connected). Whatever the client throws on it is an Error naming
 * the URL, its password hidden: the client's own message (a URIError, a TypeError whose input is
 * the URL) is dropped, as it may hold the password.
 */
function newClient(o: RedisEngineOptions, options: RedisOptions): Redis {
  try {
    return new Redis(o.url, options);
  } catch {
    throw new Error(`locksmith store: malformed URL '${o.shownUrl}': the client cannot use it`);
  }
}

/** The secrets the URL holds (its password, as written and decoded; a password in its query): hidden in what the client says. */
function secrets(url: string): string[] {
  const out: string[] = [];
  try {
    const u = new URL(url);
    out.push(u.password);
    try {
      out.push(decodeURIComponent(u.password));
    } catch {}
    for (const [k, v] of u.searchParams) if (SECRET_PARAM.test(k)) out.push(v);
  } catch {}
  return out.filter((x) => x !== '');
}

/**
 * `message` with the secrets in it replaced by '***'. The engine may quote one cut short or
 * changed: it answers a command it does not know with at most 128 characters of its arguments,
 * CR and LF made spaces (a server with HELLO and AUTH renamed away answers the client's AUTH so).
 * So each secret is also looked for with CR and LF made spaces, and then the longest beginning of
 * it that the message still holds (3 characters or more) is hidden too.
 */
function hide(message: string, hidden: string[]): string {
  // The longest first: one may hold another.
  const forms = [...new Set(hidden.flatMap((x) => [x, x.replace(/[\r\n]/g, ' ')]))].sort((a, b) => b.length - a.length);
  let m = message;
  for (const x of forms) m = m.split(x).join('***');
  const begun: string[] = [];
  for (const x of forms) {
    for (let n = x.length - 1; n >= 3; n--) {
      if (m.includes(x.slice(0, n))) {
        begun.push(x.slice(0, n));
        break;
      }
    }
  }
  for (const x of begun.sort((a, b) => b.length - a.length)) m = m.split(x).join('***');
  return m;
}

/**
 * What the client's parser says when the bytes that came back are not the Redis protocol (an HTTP
 * server, a TLS server, another service on that port) as a sentence for the user, or undefined. Its
 * own words ("Unknown RESP type 72 "H". Please report this.") ask for a bug report about the client.
 */
function notRedis(why: string): string | undefined {
  const m = /Unknown RESP type (\d+)/.exec(why);
  if (m === null && !why.includes('Please report this')) return undefined;
  const first = m === null ? undefined : Number(m[1]);
  // A TLS record starts with 0x15 (an alert) or 0x16 (a handshake).
  if (first === 0x15 || first === 0x16) return 'the server there answers in TLS, not as a plain Redis: use rediss://';
  const shown = first === undefined ? '' : first >= 0x20 && first < 0x7f ? ` (its reply began with ${JSON.stringify(String.fromCharCode(first))})` : ` (its reply began with byte ${first})`;
  return `the server there does not answer as Redis${shown}: is it another service on that port?`;
}

/**
 * Node's codes for a server certificate its TLS client refused (its X509 verify results, and the
 * host-name check's), by what is to be done about it:
 * - not trusted: no CA Node trusts issued it (self-signed, a private CA, or a chain the server
 *   sends incomplete): give Node the CA (NODE_EXTRA_CA_CERTS);
 * - out of date: expired or not yet valid: the server's certificate is to be renewed (or a clock set);
 * - the wrong name: it does not name the URL's host: a host it names goes in the URL;
 * - refused: any other (revoked, a bad signature, not for a server...): said, with its code.
 */
const NOT_TRUSTED = new Set(['DEPTH_ZERO_SELF_SIGNED_CERT', 'SELF_SIGNED_CERT_IN_CHAIN', 'UNABLE_TO_GET_ISSUER_CERT', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'CERT_UNTRUSTED']);
const OUT_OF_DATE = new Set(['CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID', 'ERROR_IN_CERT_NOT_BEFORE_FIELD', 'ERROR_IN_CERT_NOT_AFTER_FIELD']);
const WRONG_NAME = new Set(['ERR_TLS_CERT_ALTNAME_INVALID', 'HOSTNAME_MISMATCH']);
const REFUSED_CERT = new Set([
  'UNABLE_TO_GET_CRL',
  'UNABLE_TO_DECRYPT_CERT_SIGNATURE',
  'UNABLE_TO_DECRYPT_CRL_SIGNATURE',
  'UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY',
  'CERT_SIGNATURE_FAILURE',
  'CRL_SIGNATURE_FAILURE',
  'CRL_NOT_YET_VALID',
  'CRL_HAS_EXPIRED',
  'ERROR_IN_CRL_LAST_UPDATE_FIELD',
  'ERROR_IN_CRL_NEXT_UPDATE_FIELD',
  'CERT_CHAIN_TOO_LONG',
  'CERT_REVOKED',
  'INVALID_CA',
  'PATH_LENGTH_EXCEEDED',
  'INVALID_PURPOSE',
  'CERT_REJECTED',
  'UNSPECIFIED',
]);

/** What Node's TLS client puts on a certificate it refused: the host-name check adds the host and the certificate. */
type CertError = NodeJS.ErrnoException & { reason?: string; host?: string; cert?: { subjectaltname?: string; subject?: { CN?: string | string[] } } };

function isCertError(e: NodeJS.ErrnoException): boolean {
  const c = e.code ?? '';
  return NOT_TRUSTED.has(c) || OUT_OF_DATE.has(c) || WRONG_NAME.has(c) || REFUSED_CERT.has(c);
}

/** The names a certificate is for: its DNS and IP alternative names, or else its subject's CN. */
function certNames(cert: CertError['cert']): string[] {
  const alt = (cert?.subjectaltname ?? '')
    .split(', ')
    .map((x) => /^(?:DNS|IP Address):(.+)$/.exec(x)?.[1])
    .filter((x): x is string => x !== undefined);
  if (alt.length > 0) return alt;
  const cn = cert?.subject?.CN;
  return cn === undefined ? [] : Array.isArray(cn) ? cn : [cn];
}

/**
 * Why the client refused the server's certificate, and what to do, as the clause after "cannot
 * use URL". The handshake was answered: the server sent a certificate, and it was refused. The
 * advice for a private CA is the one of README.md and docs/API.md (NODE_EXTRA_CA_CERTS).
 */
function certText(e: CertError, url: string): string {
  const code = e.code ?? '';
  // Node's message, without the empty list it may end with ("... is not in the cert's list: ").
  const why = `${code}: ${e.message.replace(/[:\s]+$/, '')}`;
  if (NOT_TRUSTED.has(code)) {
    // Node reads NODE_EXTRA_CA_CERTS once, at startup: one set then trusts the CAs of that file too.
    const given = process.env.NODE_EXTRA_CA_CERTS;
    const unset = given === undefined || given === '';
    const also = unset ? '' : ` (those in NODE_EXTRA_CA_CERTS=${given} included)`;
    // sudo passes on no such variable unless told to (README.md: mount through sudo).
    const sudo = unset && process.env.SUDO_USER !== undefined ? '; through sudo: sudo --preserve-env=NODE_EXTRA_CA_CERTS ...' : '';
    // A server that sends its certificate without the intermediate ones its CA signed through.
    const chain = code === 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' || code === 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY' ? '; or the server sends its certificate without the intermediate ones: its certificate file is to hold the chain' : '';
    return `the server's certificate is not trusted (${why}): no CA Node trusts issued it${also}; if a private CA issued it, give Node the CA (a self-signed certificate is its own CA): NODE_EXTRA_CA_CERTS=/path/to/ca.pem in the environment of the mount or program (read once, at startup${sudo})${chain}`;
  }
  if (OUT_OF_DATE.has(code)) return `the server's certificate is not valid at this time (${why}): renew it on the server, or check this machine's clock`;
  if (WRONG_NAME.has(code)) {
    const host = e.host ?? engineAddress(url).host;
    const names = certNames(e.cert);
    const its = names.length === 0 ? '' : ` (it names ${names.join(', ')})`;
    return `the server's certificate does not name ${host}, the URL's host (${why}): put a host it names in the URL${its}, or give the server a certificate that names ${host}`;
  }
  return `the server's certificate was refused (${why})`;
}

/**
 * Why a rediss:// connection closed right after its TLS handshake, before any reply: a server that
 * asks for a client certificate (an alert saying so, or a reset), which locksmith does not send.
 */
function clientCertText(code: string, why: string): string {
  const fix = 'locksmith sends none; set tls-auth-clients no (or optional) on the Redis';
  if (code.includes('CERTIFICATE_REQUIRED')) return `the server asks for a client certificate (${code}): ${fix}`;
  const said = code.startsWith('ERR_SSL_') ? code : why === '' ? 'closed' : why;
  return `the server closed the connection right after the TLS handshake (${said}), as a Redis does that asks for a client certificate: ${fix}`;
}

/**
 * Why a connection failed, where the client's own error does not say it (its "read ECONNRESET",
 * "connect ECONNREFUSED ..."), as the store's whole message, or undefined when there is nothing
 * more to say. One plain TCP connection (probe.ts), on these failures only, within `ms`:
 * - refused (ECONNREFUSED, the client's own code): nothing listens there, said without a probe;
 * - redis:// dropped (reset or closed before any reply): a TLS server drops a plain Redis hello
 *   (OpenSSL resets the connection), and so does the probe's PING: use rediss://;
 * - rediss:// got nowhere: a plain Redis answers the probe's PING ('+PONG', '-NOAUTH'): use
 *   redis://; a server that accepts and answers nothing (nor a TLS handshake) may not be TLS;
 * - redis:// out of time: accepted but silent (stopped, overloaded), or no connection at all
 *   (host down, filtered): probe.ts silenceText.
 */
async function reachHint(o: RedisEngineOptions, code: string, dropped: boolean, message: string, ms: number): Promise<string | undefined> {
  if (code === 'ECONNREFUSED') return `locksmith store: ${refusedText(o.url, o.shownUrl)}`;
  if (new URL(o.url).protocol === 'rediss:') {
    const p = await probeEngine(o.url, ms);
    if (p.kind === 'redis') return `${message}: a TLS handshake got no answer, and the server there answers as a Redis without TLS: use redis://, or enable TLS on the server`;
    if (p.kind === 'silent' || p.kind === 'tls') return `${message}: the connection opened, but a TLS handshake got no answer: is the server TLS? (a Redis without TLS is redis://)`;
    return undefined;
  }
  if (!dropped) {
    // Out of time (the client's connect, or its first commands): whether a connection opens says which.
    const timedOut = code === 'ETIMEDOUT' || message.startsWith(`locksmith store: cannot reach ${o.shownUrl} within `);
    const why = timedOut ? await silenceText(o.url, o.shownUrl, o.requestTimeoutMs, ms) : undefined;
    return why === undefined ? undefined : `locksmith store: ${why}`;
  }
  const p = await probeEngine(o.url, ms);
  if (p.kind === 'tls') return `locksmith store: cannot use ${o.shownUrl}: ${TLS_ONLY}`;
  if (p.kind === 'refused') return `locksmith store: ${refusedText(o.url, o.shownUrl)}`;
  return undefined;
}

/** A connected client, or an Error naming the URL within requestTimeoutMs. */
async function connectClient(o: RedisEngineOptions, inbox: boolean): Promise<Redis> {
  // No reconnect before the first connection is up: connect() fails at the first close anyway,
  // and a reconnect pending then would be one more thing to cancel.
  let up = false;
  const c = newClient(o, { ...clientOptions(o, inbox), retryStrategy: (times: number) => (up ? backoff(times) : null) });
  const hidden = secrets(o.url);
  let last = '';
  let code = '';
  // The first certificate the client refused: what the failure is, whatever follows it.
  let cert: CertError | undefined;
  // Over rediss://, the TLS handshake completed (the client's 'connect' comes at its end).
  let secured = false;
  c.once('connect', () => {
    secured = true;
  });
  c.on('error', (e: NodeJS.ErrnoException) => {
    if (cert === undefined && isCertError(e)) cert = e;
    // What the server sent that is not Redis says more than the reset that usually follows it
    // (a server that closes on what it cannot read: ECONNRESET after its reply).
    if (notRedis(last) !== undefined) return;
    last = hide(e.message, hidden);
    code = e.code ?? '';
  });
  const t0 = performance.now();
  // `outOfTime`: the budget's timer fired (it may fire a fraction of a millisecond before the
  // clock shows the whole budget gone: Node's timers run on the loop's coarser clock).
  const fail = (why: string, outOfTime = performance.now() - t0 >= o.requestTimeoutMs) => {
    // The engine answered, and said no (a wrong password, a user without the rights, a database
    // it does not have): not a matter of reaching it.
    if (REFUSAL.test(why)) return `locksmith store: ${o.shownUrl} ${refused(why)}: ${why}${refusalHint(why)}`;
    const other = notRedis(why);
    if (other !== undefined) return `locksmith store: cannot use ${o.shownUrl}: ${other}`;
    // "within" only when the time ran out; a refused connection fails at once.
    return `locksmith store: cannot reach ${o.shownUrl}${outOfTime ? ` within ${o.requestTimeoutMs} ms` : ''}${why === '' ? '' : ` (${why})`}`;
  };
  try {
    await within(c.connect(), o.requestTimeoutMs, () => fail(last, true));
    // The client selects the URL's database (its path's, or its query's) on connect but does not
    // fail when the engine refuses it (it would then use database 0): asked again here, where a
    // refusal is seen.
    const db = urlDatabase(new URL(o.url));
    if (db !== '') await within(c.select(Number(db)), o.requestTimeoutMs, () => fail(last, true));
  } catch (e) {
    await closeNow(c);
    // The handshake was answered, and its certificate refused: no probe, nothing else to tell apart.
    if (cert !== undefined) throw new Error(hide(`locksmith store: cannot use ${o.shownUrl}: ${certText(cert, o.url)}`, hidden));
    const m = hide((e as Error).message, hidden);
    let message = m.startsWith('locksmith store:') ? m : fail(last === '' ? m : last);
    // A refused connection, a TLS server behind redis:// and a plain one behind rediss:// all look
    // like an engine out of reach: told apart here, on this failure only.
    if (message.startsWith('locksmith store: cannot reach ')) {
      // Reset or closed with no reply (a connection that closes cleanly gives no error of its own).
      const dropped = code === 'ECONNRESET' || code === 'EPIPE' || (last === '' && m.includes('Connection is closed'));
      // A TLS server that asks for a client certificate (Redis's default with tls-ca-cert-file)
      // completes the handshake (TLS 1.3), then sends an alert or resets the connection: the
      // handshake was answered, the probe's "no answer" would not be true.
      const alert = code.startsWith('ERR_SSL_');
      if (secured && (dropped || alert) && new URL(o.url).protocol === 'rediss:') message = `locksmith store: cannot use ${o.shownUrl}: ${clientCertText(code, last)}`;
      else message = (await reachHint(o, code, dropped, message, Math.min(1_000, o.requestTimeoutMs))) ?? message;
    }
    throw new Error(message);
  }
  up = true;
  return c;
}

function arr(r: Reply): Reply[] {
  return Array.isArray(r) ? r : [];
}

function records(flat: Reply): StoreRecord[] {
  const a = arr(flat);
  const out: StoreRecord[] = [];
  for (let i = 0; i + 1 < a.length; i += 2) out.push(decodeRecord(String(a[i]), String(a[i + 1])));
  return out.sort(bySeq);
}

/** A change log entry: `base|version|[step, node, removed, [id, record, ...]]` (cjson writes [] as {}). */
function change(entry: string): Change {
  const b1 = entry.indexOf('|');
  const b2 = entry.indexOf('|', b1 + 1);
  const [step, node, removed, put, fence] = JSON.parse(entry.slice(b2 + 1)) as [string, string, string[] | object, string[] | object, string | undefined];
  const flat = Array.isArray(put) ? put : [];
  const recs: StoreRecord[] = [];
  for (let i = 0; i + 1 < flat.length; i += 2) recs.push(decodeRecord(flat[i]!, flat[i + 1]!));
  const c = { base: Number(entry.slice(0, b1)), version: Number(entry.slice(b1 + 1, b2)), step, node, removed: Array.isArray(removed) ? removed : [], put: recs };
  return typeof fence === 'string' ? { ...c, fence: Number(fence) } : c;
}

/** A script's error reply: ours (LOCKSMITH ...) are the caller's bug; anything else is the engine's. */
function scriptError(e: unknown): Error | undefined {
  const m = (e as Error)?.message ?? '';
  const at = m.indexOf('LOCKSMITH ');
  if (at >= 0) return new ProgrammingError(`locksmith store: ${m.slice(at + 10)}`);
  if ((e as { name?: string })?.name === 'ReplyError') return new Error(`locksmith store: the engine refused a script: ${m}`);
  return undefined;
}

/** A session's at:<node> as recorded by OPEN, or undefined (none, or not of its shape). */
function servesOf(v: string | null | undefined): SessionServes | undefined {
  if (v === null || v === undefined || v === '') return undefined;
  try {
    const o = JSON.parse(v) as { host?: unknown; mountpoint?: unknown; machine?: unknown };
    if (typeof o.host !== 'string' || typeof o.mountpoint !== 'string') return undefined;
    // A record of an earlier version has no machine: host name alone then.
    return { host: o.host, mountpoint: o.mountpoint, ...(typeof o.machine === 'string' ? { machine: o.machine } : {}) };
  } catch {
    return undefined;
  }
}

/** Files read per SPACE_READ script by RedisEngine.readSpace: ~1 ms of the engine's time each at a few records per file. */
const SPACE_READ_FILES = 256;

/** RedisEngine.readSpace: a lock space's files as they are, read without joining it. */
export interface SpaceRead {
  /** The engine's incarnation of the namespace; '' when it has none (never used, or its data lost). */
  readonly incarnation: string;
  /**
   * 'same': the data was written under the engine's run (or would be adopted by the next check);
   * 'other': under another run (a restart or failover since, and no node has checked it since):
   * it may be older than what nodes were told had committed, and the next node's run check drops
   * it; 'unknown': the engine would not say (INFO or the run's key refused: nodes do not check either).
   */
  readonly run: 'same' | 'other' | 'unknown';
  /** Per file asked, in that order, as load() gives it (without the fence). */
  readonly files: readonly FileState[];
}

export class RedisEngine implements Engine {
  readonly name: string;
  private readonly inc: string;
  private readonly s: Scripted;
  /** The namespace's own copies of the scripts sent by EVALSHA only (gated). */
  private readonly gated: Record<GatedName, Gated>;
  private readonly readers = new Set<RedisInbox>();
  /**
   * Calls waiting for a reply, each with the connection it leaves on (its `ups` value: the one up
   * when it was made, or the next one if none was): failed at once when that connection closes
   * (the client would drop them silently). A call made while the client reconnects waits in its
   * offline queue, unsent, through every attempt that fails to connect; it goes out, behind its run
   * check, on the connection that comes up next, or ends by its own timer (requestTimeoutMs).
   */
  private readonly inFlight = new Map<(e: Error) => void, number>();
  /** Connections that have come up ('ready') so far. */
  private ups = 0;
  /** Connections closed so far, and replies that said the engine was a replica or loading: the next script may reach another server process or data set (a restart, a failover). */
  private closes = 0;
  /** The value of `closes` under which a run check (RUN_CHECK) was answered: none needed before the next close. */
  private checkedAt = -1;
  /** The socket whose writes wait for the end of this turn (corked), if any: see batchWrites. */
  private corked: Socket | undefined;

  private constructor(
    readonly client: Redis,
    private readonly o: RedisEngineOptions,
  ) {
    this.name = o.shownUrl;
    this.inc = `{${o.namespace}}:inc`;
    this.prefix = `{${o.namespace}}:`;
    const define = (name: keyof Scripted, lua: string) => client.defineCommand(name, { numberOfKeys: 1, lua });
    define('lsOpen', OPEN);
    define('lsRenew', RENEW);
    define('lsEmpty', EMPTY);
    this.s = client as unknown as Scripted;
    this.gated = Object.fromEntries(Object.entries(GATED_LUA).map(([k, lua]) => [k, gated(lua, o.namespace)])) as Record<GatedName, Gated>;
    client.on('ready', () => {
      this.ups++;
    });
    client.on('close', () => {
      this.closes++;
      const err = new Error('the connection closed before the reply (the step may have applied)');
      for (const [fail, on] of this.inFlight) if (on <= this.ups) fail(err);
    });
  }

  /** Connects (or rejects within requestTimeoutMs with an Error naming the URL). */
  static async connect(o: RedisEngineOptions): Promise<RedisEngine> {
    return new RedisEngine(await connectClient(o, false), o);
  }

  /** The namespace's key prefix, every script's second key argument. */
  private readonly prefix: string;

  /** Runs a script; connection trouble is an Error naming the URL, a refusal a ProgrammingError. */
  private async run(script: ScriptName, ...args: (string | number)[]): Promise<Reply[]> {
    return arr(await this.call(script, args));
  }

  /**
   * While other calls wait for their replies, the commands sent in this turn of the event loop (a
   * batch of calls from the caller, the steps the replies of one read led to) leave in one write
   * at its end, not one write each: the socket is corked until the turn's nextTick callbacks and
   * promise jobs have run. Every byte goes out in the same order; a command waits at most for the
   * rest of the turn's work, and only behind replies the engine still owes. A call alone on the
   * connection is written at once (corking it too cost row 6, one file's steps one at a time,
   * about a third of its cycles/s: bench/NOTES.md).
   */
  private batchWrites(): void {
    if (this.corked !== undefined || this.inFlight.size === 0 || this.client.status !== 'ready') return;
    const s = this.client.stream as Socket | undefined;
    if (s === undefined || !s.writable) return;
    s.cork();
    this.corked = s;
    process.nextTick(() => {
      this.corked = undefined;
      s.uncork();
    });
  }

  /**
   * Whether a command made now is written on the connection up now, as the client decides it: it
   * says 'ready' and its socket takes writes. A socket reset or destroyed stops taking writes before
   * its close reaches the client (a later turn of the loop), which says 'ready' until then: a call
   * made meanwhile waits in the offline queue and goes out on the next connection.
   */
  private writable(): boolean {
    const s = this.client.stream as Socket | undefined;
    return this.client.status === 'ready' && s !== undefined && s.writable && !s.writableEnded;
  }

  /**
   * One promise per call, settled by the reply or by the connection's close (inFlight), whichever
   * comes first (the client would drop a call in flight at a close silently).
   */
  private call(script: ScriptName, args: readonly (string | number)[]): Promise<Reply> {
    this.batchWrites();
    const on = this.writable() ? this.ups : this.ups + 1;
    const sent = script in GATED_LUA ? this.sendGated(this.gated[script as GatedName], args) : this.s[script as keyof Scripted](this.inc, this.prefix, ...args);
    return new Promise<Reply>((resolve, reject) => {
      let settled = false;
      const fail = (e: unknown): void => {
        if (settled) return; // when the connection's end answered first, the client's own timeout error goes nowhere
        settled = true;
        this.inFlight.delete(fail);
        // The engine is a replica, or loading a data set: what it serves next may be another data
        // set on this very connection (a full sync, then a promotion by hand: no close, the scripts
        // kept). The next script goes through a run check, as after a close.
        if ((e as { name?: string })?.name === 'ReplyError' && /\b(READONLY|LOADING|MASTERDOWN)\b/.test((e as Error).message)) this.closes++;
        reject(scriptError(e) ?? new Error(`locksmith store: ${this.o.shownUrl}: ${(e as Error).message}`));
      };
      this.inFlight.set(fail, on);
      sent.then((r) => {
        if (settled) return;
        settled = true;
        this.inFlight.delete(fail);
        resolve(r);
      }, fail);
    });
  }

  /**
   * EVALSHA of `g`, after a run check (RUN_CHECK) on a connection that has not had one answered
   * (or on the next one, when the call will wait for it in the offline queue):
   * sent just before on the same connection, so the engine runs it first (one more round trip's
   * work once per connection, no wait). When the engine does not know the script, the run check
   * again, then EVAL: a new server process knows no script (Redis 7 neither keeps nor replicates
   * them), so the first script any node runs on one comes after a check, even through a proxy
   * that hid the reconnect. Either way no step applies to data older than the engine's run.
   * Three commands at most, each within requestTimeoutMs; a step carries its own deadline, past
   * which the engine refuses it.
   */
  private async sendGated(g: Gated, args: readonly (string | number)[]): Promise<Reply> {
    // A call made while the socket takes no writes (reset, its close not yet heard) goes out on
    // the next connection: it needs the check though no close has been counted yet.
    const up = this.writable();
    if (this.checkedAt !== this.closes || !up) {
      // Answered on the next connection: under the close count once the dying socket's close is counted.
      const at = up ? this.closes : this.closes + 1;
      this.client.eval(RUN_CHECK, 1, this.inc, this.prefix).then(
        () => {
          if (at === this.closes) this.checkedAt = at;
        },
        () => {}, // the script's own call fails or runs as the engine is then
      );
    }
    try {
      // (The client's types name single values only; an array argument is flattened by its Command.)
      return (await this.client.evalsha(g.sha, 1, this.inc, this.prefix, args as unknown as string)) as Reply;
    } catch (e) {
      if (!isNoScript(e)) throw e;
    }
    await this.client.eval(RUN_CHECK, 1, this.inc, this.prefix);
    return (await this.client.eval(g.lua, 1, this.inc, this.prefix, ...args)) as Reply;
  }

  /**
   * What is unsafe in the engine's memory settings, as a sentence, or undefined: a server that
   * may evict keys (maxmemory set, with a policy other than noeviction) drops a record, a session
   * key or the grace period's key without a trace when it fills up, so a lock may be granted
   * twice. Undefined too when the engine will not say (INFO refused by an ACL, no reply).
   */
  async evictionRisk(): Promise<string | undefined> {
    let info: string;
    try {
      info = await this.client.info('memory');
    } catch {
      return undefined;
    }
    const max = Number(/^maxmemory:(\d+)/m.exec(info)?.[1] ?? 0);
    const policy = /^maxmemory_policy:(\S+)/m.exec(info)?.[1];
    if (max === 0 || policy === undefined || policy === 'noeviction') return undefined;
    return `locksmith store: the engine at ${this.o.shownUrl} may evict keys when it fills up (maxmemory ${max} bytes, maxmemory-policy ${policy}): a lock or session it evicts is lost without a trace, and its bytes may be granted twice; set maxmemory-policy noeviction (a full engine then refuses steps: requests fail as when it is out of reach, releases are tried again)`;
  }

  /** The bare round trip a commit is measured against (the bench). */
  async empty(): Promise<void> {
    await this.s.lsEmpty(this.inc);
  }

  async open(node: string, ttlMs: number, graceMs: number, instance = '', serves?: SessionServes): Promise<Opened | Taken> {
    // The instance's key (own:<node>) also keeps the session's TTL, for sessions(): OPEN compares
    // the instance part only (the same instance is not refused its name for another TTL).
    const at = serves === undefined ? '' : JSON.stringify({ host: serves.host, mountpoint: serves.mountpoint, ...(serves.machine === undefined ? {} : { machine: serves.machine }) });
    const r = await this.run('lsOpen', randomUUID(), node, ttlMs, graceMs, `${instance}/${ttlMs}`, at);
    if (r[0] === 'taken') return { taken: true };
    const [inc, epoch, from, grace, created, now, ttlMax] = r;
    return { node, epoch: Number(epoch), incarnation: String(inc), inboxFrom: String(from), graceMs: Number(grace), created: created === 1, now: Number(now), ttlMaxMs: Number(ttlMax) };
  }

  async renew(s: SessionRef, ttlMs: number, inboxAck: string): Promise<Renewed> {
    const [kind, grace, due, now, ttlMax] = await this.run('lsRenew', s.incarnation, s.node, s.epoch, ttlMs, inboxAck);
    if (kind === 'ok') return { kind: 'ok', graceMs: Number(grace), reap: due === 1, now: Number(now), ttlMaxMs: Number(ttlMax) };
    return { kind: kind === 'reset' ? 'reset' : 'expired' };
  }

  async policy(s: SessionRef, policy: string): Promise<{ policy: string; node: string } | undefined> {
    const r = await this.run('lsPolicy', s.incarnation, s.node, s.epoch, policy);
    return r[0] === 'other' ? { policy: String(r[1]), node: String(r[2]) } : undefined;
  }

  async endSession(s: SessionRef): Promise<void> {
    await this.run('lsEnd', s.incarnation, s.node, s.epoch);
  }

  async commit(s: SessionRef, st: EngineStep): Promise<CommitReply> {
    const args: (string | number)[] = [s.incarnation, s.node, s.epoch, st.file, st.base, st.step, (st.grants ? '1' : '0') + (st.fence === undefined ? '' : `|${st.fence[0]}|${st.fence[1]}`), st.remove.length, st.put.length, st.notify.length, st.edges.length, st.until ?? ''];
    for (const id of st.remove) args.push(id);
    for (const r of st.put) args.push(r.id, encodeRecord(r));
    for (const n of st.notify) args.push(n.node, n.epoch, n.requestId, n.kind, n.data);
    for (const e of st.edges) args.push(e.waiter, e.owner, e.check ? 1 : 0, JSON.stringify([e.hard, e.soft, e.sessions]));
    let r: Reply[];
    try {
      r = arr(await this.call('lsCommit', args));
    } catch (e) {
      if (e instanceof ProgrammingError || (e as Error).message.includes('refused a script')) throw e;
      return { ok: false, reason: 'unreachable', step: st.step, error: (e as Error).message };
    }
    switch (r[0]) {
      case 'ok':
        return { ok: true, version: Number(r[1]), step: st.step };
      case 'stale':
        if (r[2] === 'log') return { ok: false, reason: 'stale', version: Number(r[1]), missed: arr(r[3]!).map((x) => change(String(x))) };
        return { ok: false, reason: 'stale', version: Number(r[1]), records: records(r[3]!), ...(r[4] ? { last: String(r[4]) } : {}), ...(r[5] ? { fence: Number(r[5]) } : {}) };
      case 'fenced':
        return { ok: false, reason: 'fenced' };
      case 'reset':
        return { ok: false, reason: 'reset' };
      case 'late':
        return { ok: false, reason: 'late' };
      case 'grace':
        return { ok: false, reason: 'grace', retryInMs: Number(r[1]) };
      case 'deadlock':
        return { ok: false, reason: 'deadlock', waiter: String(r[1]), owner: String(r[2]) };
      case 'overdue':
        return { ok: false, reason: 'overdue', waiter: String(r[1]), owner: String(r[2]), retryInMs: Number(r[3]) };
      case 'fence':
        return { ok: false, reason: 'fence', last: Number(r[1]), nowUs: Number(r[2]) };
      case 'dead': {
        const a = arr(r[1]!);
        const sessions = [];
        for (let i = 0; i + 1 < a.length; i += 2) sessions.push({ node: String(a[i]), epoch: Number(a[i + 1]) });
        return { ok: false, reason: 'dead', sessions };
      }
      default:
        throw new Error(`locksmith store: unexpected reply from ${this.o.shownUrl}: ${JSON.stringify(r)}`);
    }
  }

  async reassert(s: SessionRef, file: string, step: string, recs: readonly StoreRecord[], edges: readonly Required<EdgeInput>[]): Promise<ReassertReply> {
    const args: (string | number)[] = [s.incarnation, s.node, s.epoch, file, step, recs.length, edges.length];
    for (const r of recs) args.push(r.id, encodeRecord(r));
    for (const e of edges) args.push(e.waiter, e.owner, JSON.stringify([e.hard, e.soft, e.sessions]));
    let r: Reply[];
    try {
      r = arr(await this.call('lsReassert', args));
    } catch (e) {
      if (e instanceof ProgrammingError || (e as Error).message.includes('refused a script')) throw e;
      return { ok: false, reason: 'unreachable', error: (e as Error).message };
    }
    if (r[0] === 'ok') return { ok: true, version: Number(r[1]) };
    return { ok: false, reason: r[0] === 'late' ? 'late' : r[0] === 'fenced' ? 'fenced' : 'reset' };
  }

  async load(file: string): Promise<FileState> {
    const [v, flat, f] = await this.run('lsLoad', file);
    return { version: Number(v), records: records(flat!), ...(f ? { fence: Number(f) } : {}) };
  }

  async reap(limit: number): Promise<ReapReply> {
    const [out, more] = await this.run('lsReap', limit);
    const dead: DeadSession[] = arr(out!).map((d) => {
      const [node, epoch, files] = arr(d);
      return {
        node: String(node),
        epoch: Number(epoch),
        files: arr(files!).map((f) => {
          const [file, version, flat] = arr(f);
          return { file: String(file), version: Number(version), records: records(flat!) };
        }),
      };
    });
    return { dead, more: more === 1 };
  }

  async sessionFiles(s: SessionRef, cursor: string, limit: number): Promise<SessionFilesPage | 'reset'> {
    const r = await this.run('lsSessionFiles', s.incarnation, s.node, s.epoch, cursor, limit);
    if (r[0] !== 'ok') return 'reset';
    return {
      cursor: String(r[1]),
      files: arr(r[2]!).map((f) => {
        const [file, flat] = arr(f);
        return { file: String(file), records: records(flat!) };
      }),
    };
  }

  async closesCycle(owner: string, targets: readonly string[], hardOnly: boolean): Promise<boolean> {
    return (await this.call('lsCycle', [owner, hardOnly ? 1 : 0, ...targets])) === 1;
  }

  async reaches(pairs: readonly (readonly [string, string])[], hardOnly: boolean): Promise<boolean[]> {
    if (pairs.length === 0) return [];
    return (await this.run('lsReach', hardOnly ? 1 : 0, ...pairs.flat())).map((x) => x === 1);
  }

  async fileReach(file: string, pairs: readonly (readonly [string, string])[]): Promise<FileReach> {
    const [answers, stored] = await this.run('lsFileReach', file, ...pairs.flat());
    const edges = new Map<string, StoredEdges>();
    const flat = arr(stored!);
    for (let i = 0; i + 1 < flat.length; i += 2) {
      // node|epoch|[hard, soft, sessions], as COMMIT stored it.
      const text = String(flat[i + 1]);
      const m = /^[^|]*\|\d+\|(.*)$/s.exec(text);
      let hs: unknown;
      try {
        hs = m === null ? undefined : JSON.parse(m[1]!);
      } catch {
        hs = undefined;
      }
      if (!Array.isArray(hs) || !Array.isArray(hs[0]) || !Array.isArray(hs[1])) throw new Error(`locksmith store: unexpected edge from ${this.o.shownUrl}: ${JSON.stringify(text)}`);
      edges.set(String(flat[i]), { hard: (hs[0] as unknown[]).map(String), soft: (hs[1] as unknown[]).map(String) });
    }
    return { reach: arr(answers!).map((x) => x === 1), edges };
  }

  /** Every file of the namespace's index (SSCAN, 1,000 a step); `progress` after each step's answer. */
  async files(progress?: () => void): Promise<string[]> {
    const out: string[] = [];
    let cursor = '0';
    do {
      let next: string;
      let batch: string[];
      try {
        [next, batch] = await this.client.sscan(`${this.prefix}files`, cursor, 'COUNT', 1000);
      } catch (e) {
        // As for a script: an Error naming the URL, never the client's bare "Command timed out".
        const m = (e as Error).message;
        throw new Error((e as { name?: string }).name === 'ReplyError' ? `locksmith store: the engine refused a listing: ${m}` : `locksmith store: ${this.o.shownUrl}: ${m}`);
      }
      cursor = next;
      out.push(...batch);
      progress?.();
    } while (cursor !== '0');
    return [...new Set(out)].sort();
  }

  async sessions(): Promise<SessionsRead> {
    let replies: [Error | null, unknown][] | null;
    try {
      // One round trip, one moment: the clock, the registry (member node|epoch, score the deadline) and the longest TTL.
      replies = await this.client.multi().time().zrange(`${this.prefix}sessions`, '0', '-1', 'WITHSCORES').get(`${this.prefix}ttlmax`).exec();
    } catch (e) {
      const m = (e as Error).message;
      throw new Error((e as { name?: string }).name === 'ReplyError' ? `locksmith store: the engine refused a listing: ${m}` : `locksmith store: ${this.o.shownUrl}: ${m}`);
    }
    if (replies === null) throw new Error(`locksmith store: ${this.o.shownUrl}: the session listing was discarded`);
    for (const [err] of replies) if (err) throw new Error(`locksmith store: the engine refused a listing: ${err.message}`);
    const [sec, usec] = replies[0]![1] as [string, string];
    const flat = replies[1]![1] as string[];
    const now = Number(sec) * 1000 + Math.floor(Number(usec) / 1000);
    const sessions: { node: string; epoch: number; deadline: number; ttlMs?: number; serves?: SessionServes }[] = [];
    for (let i = 0; i + 1 < flat.length; i += 2) {
      const m = /^(.*)\|(\d+)$/.exec(flat[i]!);
      if (m) sessions.push({ node: m[1]!, epoch: Number(m[2]), deadline: Number(flat[i + 1]) });
    }
    // The TTLs of the sessions still live, from their openers' keys, and where their mounts serve
    // (a second read: a session that ended in between keeps neither).
    const live = sessions.filter((x) => x.deadline > now);
    if (live.length > 0) {
      const own = live.map((x) => `${this.prefix}own:${x.node}`);
      let owners: (string | null)[];
      try {
        owners = await this.client.mget([...own, ...live.map((x) => `${this.prefix}at:${x.node}`)]);
      } catch (e) {
        // A user whose ACL refuses at:<node> (OPEN records nothing for it then) still reads the
        // TTLs, which judge a late node; an engine that does not answer is not asked again.
        owners = /^NOPERM/.test(e instanceof Error ? e.message : '') ? await this.client.mget(own).catch(() => []) : [];
      }
      live.forEach((x, i) => {
        const ttl = /\/(\d+)$/.exec(owners[i] ?? '')?.[1];
        if (ttl !== undefined) x.ttlMs = Number(ttl);
        const serves = servesOf(owners[live.length + i]);
        if (serves !== undefined) x.serves = serves;
      });
    }
    return { now, ttlMaxMs: Number(replies[2]![1] ?? 0), sessions };
  }

  /**
   * Every file's version and records, each file at one moment (SPACE_READ_FILES files per script), with the incarnation and how the data stands
   * to the engine's run (SPACE_READ), read-only: no session, no run check (which may write), no
   * script a node runs loaded (EVAL_RO of a script no node sends; EVAL where the engine has no
   * EVAL_RO, before Redis 7: the script has no write command either). For a listing that joins
   * no lock space (`locksmith locks --store`). An Error naming the URL when the engine does not
   * answer, or saying it refused the read. `progress`: called as each script's answer comes.
   */
  async readSpace(files: readonly string[], progress?: () => void): Promise<SpaceRead> {
    // A script blocks the engine while it runs: a large namespace is read SPACE_READ_FILES files
    // per script, each file at one moment; a loss of the data between two reads (the incarnation
    // changed) is an error, never a listing mixing two data sets.
    const parts: SpaceRead[] = [];
    for (let i = 0; i === 0 || i < files.length; i += SPACE_READ_FILES) {
      const part = await this.readSpaceOnce(files.slice(i, i + SPACE_READ_FILES));
      if (parts.length > 0 && part.incarnation !== parts[0]!.incarnation) throw new Error(`locksmith store: ${this.o.shownUrl}: the lock space's data changed during the listing (the engine lost it, or it was made anew): list again`);
      parts.push(part);
      progress?.();
    }
    const run = parts.some((p) => p.run === 'other') ? 'other' : parts.some((p) => p.run === 'unknown') ? 'unknown' : 'same';
    return { incarnation: parts[0]!.incarnation, run, files: parts.flatMap((p) => p.files) };
  }

  private async readSpaceOnce(files: readonly string[]): Promise<SpaceRead> {
    const args = [SPACE_READ, 1, this.inc, this.prefix, ...files];
    let r: Reply;
    try {
      try {
        r = (await this.client.call('EVAL_RO', ...args)) as Reply;
      } catch (e) {
        if (!((e as { name?: string }).name === 'ReplyError' && /unknown command/i.test((e as Error).message))) throw e;
        r = (await this.client.call('EVAL', ...args)) as Reply;
      }
    } catch (e) {
      const m = (e as Error).message;
      throw new Error((e as { name?: string }).name === 'ReplyError' ? `locksmith store: the engine refused a listing: ${m}` : `locksmith store: ${this.o.shownUrl}: ${m}`);
    }
    const a = arr(r);
    const run = String(a[1]);
    return {
      incarnation: String(a[0] ?? ''),
      run: run === 'same' || run === 'other' ? run : 'unknown',
      files: files.map((_, i) => {
        const [v, flat] = arr(a[2 + i]!);
        return { version: Number(v), records: records(flat!) };
      }),
    };
  }

  /** Inbox connections being closed (at a reader's close or restart): shutdown waits for them. */
  private readonly closing = new Set<Promise<void>>();

  inbox(node: string): InboxReader {
    const ending = (p: Promise<void>) => {
      this.closing.add(p);
      void p.then(() => this.closing.delete(p));
    };
    const r = new RedisInbox(this.o, `${this.prefix}in:${node}`, () => this.readers.delete(r), ending);
    this.readers.add(r);
    return r;
  }

  /** Resolves once its connections have closed: nothing of it is left in the event loop. */
  async shutdown(): Promise<void> {
    for (const r of this.readers) r.close();
    await Promise.all([closeNow(this.client), ...this.closing]);
  }
}

/**
 * One node's inbox stream on a dedicated connection: XREAD BLOCK 0 from the last id. After a
 * dropped connection ioredis reconnects and sends the same XREAD again (same id): nothing is
 * lost and nothing polls. restart() ends the connection (a new session moved the id).
 */
const ABORTED = Symbol('aborted');

class RedisInbox implements InboxReader {
  private conn: Redis | undefined;
  private connecting: Promise<Redis> | undefined;
  private closed = false;

  constructor(
    private readonly o: RedisEngineOptions,
    private readonly key: string,
    private readonly onClose: () => void,
    /** Told of each connection it ends, until that connection has closed. */
    private readonly ending: (closed: Promise<void>) => void,
  ) {}

  /** The connection's name (CLIENT LIST): nothing else may be sent on a connection blocked in XREAD. */
  readonly connectionName = `locksmith-inbox-${process.pid}-${++connections}`;

  private async client(): Promise<Redis> {
    if (this.conn !== undefined && this.conn.status !== 'end') return this.conn;
    this.connecting ??= (async () => {
      const c = newClient(this.o, clientOptions(this.o, true, this.connectionName));
      c.on('error', () => {});
      this.conn = c;
      return c;
    })().finally(() => {
      this.connecting = undefined;
    });
    return this.connecting;
  }

  /** Ends the pending read at once (restart, close). */
  private abort: (() => void) | undefined;

  async read(after: string): Promise<InboxEvent[]> {
    if (this.closed) return [];
    const c = await this.client();
    let r: unknown;
    // restart() must end this read even when the connection is reconnecting, where ioredis keeps
    // the XREAD queued and disconnect() never settles it (an engine restart left readers stuck).
    const aborted = new Promise<typeof ABORTED>((resolve) => {
      this.abort = () => resolve(ABORTED);
    });
    const sent = c.xread('BLOCK', 0, 'STREAMS', this.key, after);
    sent.catch(() => {});
    try {
      r = await Promise.race([sent, aborted]);
    } catch (e) {
      if (this.closed || c.status === 'end') return [];
      throw new Error(`locksmith store: inbox ${this.key} on ${this.o.shownUrl}: ${(e as Error).message}`);
    } finally {
      this.abort = undefined;
    }
    if (r === ABORTED) return [];
    const out: InboxEvent[] = [];
    for (const [, entries] of (r ?? []) as [string, [string, string[]][]][]) {
      for (const [id, kv] of entries) {
        const m = new Map<string, string>();
        for (let i = 0; i + 1 < kv.length; i += 2) m.set(kv[i]!, kv[i + 1]!);
        out.push({
          id,
          file: m.get('f') ?? '',
          version: Number(m.get('v') ?? 0),
          from: m.get('n') ?? '',
          epoch: Number(m.get('e') ?? 0),
          requestId: m.get('r') ?? '',
          kind: m.get('k') ?? '',
          data: m.get('d') ?? '',
        });
      }
    }
    return out;
  }

  restart(): void {
    // The pending read ends now; the next read() connects again, on a fresh connection.
    const c = this.conn;
    this.conn = undefined;
    this.abort?.();
    if (c !== undefined) this.ending(closeNow(c));
  }

  close(): void {
    this.closed = true;
    this.abort?.();
    if (this.conn !== undefined) this.ending(closeNow(this.conn));
    this.onClose();
  }
}
