/**
 * StoreOptions, checked once at the boundary (a TypeError names the option), and the tuning that
 * follows from them. Names that end up in engine keys are restricted so that a key can be read
 * back without escaping: see the key layout in ./index.ts.
 */
import { hostname } from 'node:os';
import { describeValue } from '../core/input.js';
import type { StoreOptions } from '../types.js';
import type { SessionServes } from './types.js';

export const NAME = /^[A-Za-z0-9._-]{1,64}$/;
export const NAMESPACE = /^[A-Za-z0-9._:-]{1,64}$/;
/** What NAME and NAMESPACE accept, for messages. */
export const NAME_RULE = '1 to 64 of A-Z a-z 0-9 . _ -';
export const NAMESPACE_RULE = '1 to 64 of A-Z a-z 0-9 . _ : -';

export interface Tuning {
  /** A renewal is sent this often (default sessionTtlMs / 4). */
  renewEveryMs: number;
  /** Fenced this long after the last confirmed renewal was *sent* (default sessionTtlMs * 3 / 4). */
  fenceAfterMs: number;
  /** The grace period an incarnation starts with (default sessionTtlMs). */
  graceMs: number;
}

/**
 * The key under which a mount (mountFuse, so 'locksmith mount' too) hands its store options where
 * it serves (SessionServes): the node's session records it on the engine (Engine.open), so that
 * 'locksmith locks' can name the mount of a node whose server is gone, or that is on another
 * machine. Not an option of the API (a symbol: StoreOptions' checks, which list string keys, and
 * the copies the workers are sent leave it out); a coordinator a program starts records nothing.
 */
export const SERVES = Symbol('locksmith.serves');

/**
 * The key under which a coordinator hands its store options the policy it decides with
 * ('default', 'fifo'): checked against the namespace's other live nodes when the session opens
 * (Engine.policy). A symbol, as SERVES: not an option of the store.
 */
export const POLICY = Symbol('locksmith.policy');

/** Store options that may carry where a mount serves (SERVES) and the coordinator's policy (POLICY). */
export type ServingStoreOptions = StoreOptions & { [SERVES]?: SessionServes; [POLICY]?: string };

export interface Resolved extends Tuning {
  url: string;
  /** The URL with its password replaced, for messages. */
  shownUrl: string;
  parsed: URL;
  namespace: string;
  node: string;
  sessionTtlMs: number;
  requestTimeoutMs: number;
  /** Where this node's mount serves (SERVES), for a mount. */
  serves?: SessionServes;
  /** The coordinator's policy (POLICY). */
  policy?: string;
}

export const DEFAULT_TTL_MS = 10_000;
export const DEFAULT_REQUEST_TIMEOUT_MS = 5_000;

function int(v: unknown, name: string, min: number, dflt: number): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > 2 ** 31 - 1) {
    throw new TypeError(`store.${name} must be an integer from ${min} to ${2 ** 31 - 1}, got ${describeValue(v)}`);
  }
  return v;
}

/**
 * The query parameters a URL may carry. The client reads every query parameter as one of its own
 * options and lets it win over the options locksmith gives it: `?commandTimeout=0`,
 * `?enableOfflineQueue=true` or `?keyPrefix=x` would undo the request deadline, the fail-fast
 * queueing or the namespace's keys. So only these pass: the credentials, the database and the
 * address family.
 */
const QUERY = new Map<string, RegExp>([
  ['password', /^/],
  ['username', /^/],
  ['db', /^\d{1,5}$/],
  ['family', /^[46]$/],
]);

/** Throws an Error naming the first query parameter locksmith does not take, or a bad value of one it takes. */
function queryProblem(parsed: URL, shownUrl: string): void {
  const seen = new Set<string>();
  for (const [k, v] of parsed.searchParams) {
    const rule = QUERY.get(k);
    // Text with no '=' (the rest of a password with a '&' in it, say) is no parameter.
    if (v === '' && !parsed.search.includes(`${k}=`)) throw new Error(`locksmith store: malformed URL '${shownUrl}': its query must be name=value pairs; a value with '&', '#' or '%' is written percent-encoded (encodeURIComponent)`);
    if (rule === undefined) throw new Error(`locksmith store: unsupported URL '${shownUrl}': query parameter '${k}' (a URL may carry only ${[...QUERY.keys()].join(', ')})`);
    if (!rule.test(v)) throw new Error(`locksmith store: malformed URL '${shownUrl}': query parameter '${k}' must be ${k === 'db' ? 'a database number' : '4 or 6'}`);
    // The client reads them only when the URL has neither before its host ('redis://:pw@h?username=u'
    // would authenticate as the default user with pw, not as u).
    if ((k === 'username' || k === 'password') && (parsed.username !== '' || parsed.password !== '')) {
      throw new Error(`locksmith store: malformed URL '${shownUrl}': query parameter '${k}' beside a user or password before the host (the client would ignore it): give both before the host (redis://user:password@host) or both in the query`);
    }
    // The client takes the last of two; what is checked here (the database asked for again after
    // connecting: redis.ts connectClient) would be the first.
    if (seen.has(k)) throw new Error(`locksmith store: malformed URL '${shownUrl}': query parameter '${k}' is given twice`);
    seen.add(k);
  }
}

/**
 * The database a URL names: its path's number (/N), else its query's (?db=N), as the client reads
 * it (the path wins); '' when it names none.
 */
export function urlDatabase(parsed: URL): string {
  const path = parsed.pathname.replace(/^\//, '');
  return path !== '' ? path : (parsed.searchParams.get('db') ?? '');
}

/** Query parameters whose values are hidden: ioredis reads any as an option (password, sentinelPassword, ...). */
export const SECRET_PARAM = /pass|pwd|secret|token|auth|cred|key/i;

/**
 * A URL for messages: its password (if any) replaced by '***'. Never throws. Any text, well-formed
 * or not, is masked: everything between the scheme (with its slashes) and the last '@', all but the
 * user up to its first ':' when there is one ('redis:/:PW@h', 'redis:u:PW@h', '//:PW@h' and the
 * old password-only 'PW@h' included), and the values of query parameters that name a password.
 */
export function showUrl(raw: string): string {
  try {
    // First what the URL parser drops: C0 controls and spaces around it, tabs and newlines in it.
    // biome-ignore lint/suspicious/noControlCharactersInRegex: those are the characters dropped
    const url = String(raw).replace(/^[\u0000-\u0020]+|[\u0000-\u0020]+$/g, '').replace(/[\t\n\r]/g, '');
    // The user ends at the first ':' (it may hold an '@': an e-mail-like ACL user), the password at
    // the last '@' (it may hold '@', '/' or '#': written as is, the URL is malformed, and the error
    // that says so must not show it either).
    const at = url.lastIndexOf('@');
    let head = '';
    let rest = url;
    if (at >= 0) {
      const scheme = /^(?:[a-z][a-z0-9+.-]*:)?[/\\]*/i.exec(url)?.[0] ?? '';
      const info = url.slice(scheme.length, at);
      const colon = info.indexOf(':');
      head = `${scheme}${colon < 0 ? '' : `${info.slice(0, colon)}:`}***@`;
      rest = url.slice(at + 1);
    } else {
      // No '@': one forgotten ('redis://user:PASSWORD', 'redis://:PASSWORD') leaves the password
      // where the port stands. A port that is not a number is masked, and all after it (the
      // password may hold '/', '?' or '#'), unless what stands before it cannot be a user: an IP
      // address or 'localhost' ('redis://127.0.0.1:637g' is a mistyped port, shown as written). An
      // IPv6 host is left alone.
      const m = portSlot(url);
      if (m !== undefined && m.port !== '' && !/^\d+$/.test(m.port) && !hostOnly(m.host)) rest = `${m.before}***`;
    }
    // A password in the query ends the shown query: what follows it may be the rest of a password
    // written as is, with a '&' or a '#' in it.
    const q = rest.indexOf('?');
    if (q < 0) return head + rest;
    const params = rest.slice(q + 1).split('&');
    const shown: string[] = [];
    for (const p of params) {
      const eq = p.indexOf('=');
      let name = eq < 0 ? p : p.slice(0, eq);
      try {
        name = decodeURIComponent(name.replace(/\+/g, ' '));
      } catch {
        // a name that cannot be read may name a password
      }
      if (SECRET_PARAM.test(name) || name.includes('%')) {
        shown.push(`${p.slice(0, eq < 0 ? p.length : eq)}=***${shown.length + 1 < params.length ? '&…' : ''}`);
        break;
      }
      shown.push(p);
    }
    return `${head}${rest.slice(0, q + 1)}${shown.join('&')}`;
  } catch {
    return '(a URL that cannot be shown)';
  }
}

/**
 * In a URL with no '@': what stands where the port does, what comes before it (the scheme and the
 * host, with the ':'), and that host; undefined when there is no ':' after the host (or the host is
 * an IPv6 address in brackets).
 */
function portSlot(url: string): { before: string; host: string; port: string } | undefined {
  const m = /^((?:[a-z][a-z0-9+.-]*:)?[/\\]*([^/\\?#:[]*):)([^/\\?#]*)/i.exec(url);
  return m === null ? undefined : { before: m[1]!, host: m[2]!, port: m[3]! };
}

/** A host that no one would take for a user name: an IPv4 address or localhost. */
function hostOnly(host: string): boolean {
  return /^\d{1,3}(?:\.\d{1,3}){3}$/.test(host) || /^localhost$/i.test(host);
}

/**
 * Why the port of a URL the URL parser refused is wrong, or undefined when its port is not the
 * problem. Where showUrl hides it (with no '@', a password may stand there), the message says so.
 */
function portProblem(raw: string): string | undefined {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: those are the characters the URL parser drops
  const url = raw.replace(/^[\u0000-\u0020]+|[\u0000-\u0020]+$/g, '').replace(/[\t\n\r]/g, '');
  const at = url.lastIndexOf('@');
  const scheme = /^(?:[a-z][a-z0-9+.-]*:)?[/\\]*/i.exec(url)?.[0] ?? '';
  const authority = (at >= 0 ? url.slice(at + 1) : url.slice(scheme.length)).split(/[/\\?#]/)[0]!;
  // An IPv6 address whose '[' is not closed is the problem itself, not the ':' inside it.
  if (authority.startsWith('[') && !authority.includes(']')) return undefined;
  const port = /^(?:\[[^\]]*\]|[^:]*):(.*)$/.exec(authority)?.[1];
  if (port === undefined || (/^\d+$/.test(port) && Number(port) <= 65535)) return undefined;
  // Hidden exactly where showUrl hides it.
  const slot = at < 0 ? portSlot(url) : undefined;
  const hidden = slot !== undefined && slot.port !== '' && !/^\d+$/.test(slot.port) && !hostOnly(slot.host);
  return `the port must be a number from 0 to 65535${hidden ? " (what stands there is not shown: with no '@' in the URL it may be a password whose '@host' was left out)" : ''}`;
}

/** Where the URL has a password: how to write one with characters a URL reserves. */
function passwordHint(url: string): string {
  return url.includes('@') ? "; a password with '@', '/', '#', '%' or ':' is written percent-encoded (encodeURIComponent)" : '';
}

/** The default node name: this host and process (`pid`: another process of this host's), so that two coordinators on one host differ. */
export function defaultNode(pid: number = process.pid): string {
  const h = hostname().replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 48) || 'node';
  return `${h}-${pid}`;
}

/**
 * StoreOptions (a URL alone is shorthand for { url }) resolved, with the tuning. A malformed URL,
 * or one that names no Redis, is an Error that names it (its password hidden).
 */
export function resolveOptions(o: string | StoreOptions, tuning: Partial<Tuning> = {}): Resolved {
  const opts: StoreOptions = typeof o === 'string' ? { url: o } : o;
  if (opts === null || typeof opts !== 'object') throw new TypeError(`store must be a URL or { url, namespace, node, sessionTtlMs, requestTimeoutMs }, got ${describeValue(opts)}`);
  if (typeof opts.url !== 'string') throw new TypeError(`store.url must be a string such as 'redis://127.0.0.1:6379', got ${describeValue(opts.url)}`);
  const shownUrl = showUrl(opts.url);
  let parsed: URL;
  try {
    parsed = new URL(opts.url);
  } catch {
    const port = portProblem(opts.url);
    if (port !== undefined) throw new Error(`locksmith store: malformed URL '${shownUrl}': ${port}${passwordHint(opts.url)}`);
    throw new Error(`locksmith store: malformed URL '${shownUrl}' (expected redis://[user:password@]host[:port][/db]${passwordHint(opts.url)})`);
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') {
    throw new Error(`locksmith store: unsupported URL '${shownUrl}': the engine must be redis:// or rediss://`);
  }
  if (parsed.hostname === '') throw new Error(`locksmith store: malformed URL '${shownUrl}': no host${passwordHint(opts.url)}`);
  // The URL parser takes port 0, and so would the client, which then fails to connect to it: said
  // at once, as a malformed URL, rather than after a connection refused.
  if (parsed.port === '0') throw new Error(`locksmith store: malformed URL '${shownUrl}': port 0 cannot be connected to (give the engine's port, from 1 to 65535, or leave it out for 6379)`);
  // The client decodes the user and the password (decodeURIComponent): a '%' not followed by two
  // hex digits, or bytes that are not UTF-8, would be its raw URIError.
  try {
    decodeURIComponent(parsed.username);
    decodeURIComponent(parsed.password);
  } catch {
    throw new Error(`locksmith store: malformed URL '${shownUrl}': the user or password is not valid percent-encoding${passwordHint(opts.url)}`);
  }
  const db = parsed.pathname.replace(/^\//, '');
  if (db !== '' && !/^\d{1,5}$/.test(db)) throw new Error(`locksmith store: malformed URL '${shownUrl}': the path must be a database number${passwordHint(opts.url)}`);
  queryProblem(parsed, shownUrl);
  const namespace = opts.namespace ?? 'locksmith';
  if (typeof namespace !== 'string' || !NAMESPACE.test(namespace)) {
    throw new TypeError(`store.namespace must be ${NAMESPACE_RULE}, got ${describeValue(namespace)}`);
  }
  const node = opts.node ?? defaultNode();
  if (typeof node !== 'string' || !NAME.test(node)) throw new TypeError(`store.node must be ${NAME_RULE}, got ${describeValue(node)}`);
  const sessionTtlMs = int(opts.sessionTtlMs, 'sessionTtlMs', 100, DEFAULT_TTL_MS);
  const requestTimeoutMs = int(opts.requestTimeoutMs, 'requestTimeoutMs', 1, DEFAULT_REQUEST_TIMEOUT_MS);
  const t = resolveTuning(sessionTtlMs, tuning);
  // The client is handed the URL as parsed and checked here, not the raw text: ioredis reads one
  // that does not start with "redis://" (a tab before it) as a host name, and its errors repeat it.
  const serves = (opts as ServingStoreOptions)[SERVES];
  const policy = (opts as ServingStoreOptions)[POLICY];
  return { url: parsed.href, shownUrl: showUrl(parsed.href), parsed, namespace, node, sessionTtlMs, requestTimeoutMs, ...t, ...(serves === undefined ? {} : { serves }), ...(policy === undefined ? {} : { policy }) };
}

export function resolveTuning(sessionTtlMs: number, tuning: Partial<Tuning>): Tuning {
  // A renewal's reply is also what tells a node that another's session expired (onReapDue): at
  // most 500 ms apart, a dead node's locks go within sessionTtlMs + 1 s (API.md).
  const renewEveryMs = tuning.renewEveryMs ?? defaultRenewEveryMs(sessionTtlMs);
  const fenceAfterMs = tuning.fenceAfterMs ?? defaultFenceAfterMs(sessionTtlMs);
  const graceMs = tuning.graceMs ?? sessionTtlMs;
  // A fence after the TTL would let a node act on locks the engine may already have given away.
  if (!(fenceAfterMs > 0 && fenceAfterMs < sessionTtlMs)) throw new TypeError(`fenceAfterMs must be above 0 and below sessionTtlMs (${sessionTtlMs}), got ${fenceAfterMs}`);
  if (!(renewEveryMs > 0)) throw new TypeError(`renewEveryMs must be above 0, got ${renewEveryMs}`);
  if (!(graceMs >= 0)) throw new TypeError(`graceMs must be 0 or more, got ${graceMs}`);
  return { renewEveryMs, fenceAfterMs, graceMs };
}

/** A node renews its session every TTL/4, at most 500 ms apart (resolveTuning's default). */
const defaultRenewEveryMs = (ttlMs: number): number => Math.max(1, Math.min(500, Math.floor(ttlMs / 4)));
/** A node fences itself 3/4 of the TTL after its last confirmed renewal was sent (the default). */
const defaultFenceAfterMs = (ttlMs: number): number => Math.floor((ttlMs * 3) / 4);

/**
 * How long a session may go without a renewal before it counts as late: two renewals missed and a
 * second, at most the time after which its node fences itself (the defaults: no node tunes them
 * outside tests). The engines judge by it whose wait-for edges a deadlock check trusts (a late
 * node may have answered its waiters already: the COMMIT reply 'overdue'; the Lua copy is in
 * lua.ts lateLeft), and `locksmith locks` which nodes it names late. Never throws.
 */
export function lateAfterMs(ttlMs: number): number {
  return Math.min(2 * defaultRenewEveryMs(ttlMs) + 1000, defaultFenceAfterMs(ttlMs));
}
