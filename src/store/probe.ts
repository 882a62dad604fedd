/**
 * One plain TCP connection to an engine's host and port, to say why a connection failed where
 * the client's own error cannot (./redis.ts, after a failed connect only: refused, not Redis, TLS
 * or not, accepted but silent, never opened), and beside a 'locks'
 * request of a mount sharing its lock space (src/mount-control.ts: an engine that refuses
 * connections is said at once, not after requestTimeoutMs).
 */
import { createConnection } from 'node:net';

/**
 * - refused: nothing listens there (ECONNREFUSED);
 * - redis: it answered a plain PING as a Redis does ('+PONG', '-NOAUTH ...');
 * - tls: it answered with a TLS record, or reset or closed the connection on the plain PING, as a
 *   TLS server does (OpenSSL drops a client that does not open with a handshake);
 * - other: it answered something else (its first byte);
 * - open: it accepted the connection (only asked with `hello` false);
 * - silent: it accepted the connection and answered nothing within the budget;
 * - unreachable: the connection did not open: another connect error (its code: EHOSTUNREACH,
 *   ENOTFOUND...), or ETIMEDOUT when it did not open within the budget.
 */
export type EngineProbe =
  | { kind: 'refused' | 'redis' | 'tls' | 'open' | 'silent' }
  | { kind: 'other'; first: number }
  | { kind: 'unreachable'; code: string };

/** The engine's address from its URL: host and port, and `host:port` for a person (IPv6 in brackets). */
export function engineAddress(url: string): { host: string; port: number; shown: string } {
  const u = new URL(url);
  const host = u.hostname.replace(/^\[|\]$/g, '') || '127.0.0.1';
  const port = Number(u.port || 6379);
  return { host, port, shown: `${host.includes(':') ? `[${host}]` : host}:${port}` };
}

/**
 * Connects to `url`'s host and port and, with `hello`, sends a plain PING and reads the first
 * bytes back; within `ms`. Never rejects; resolves once its socket has closed (nothing of it is
 * left in the event loop).
 */
export function probeEngine(url: string, ms: number, hello = true): Promise<EngineProbe> {
  const { host, port } = engineAddress(url);
  return new Promise((done) => {
    const s = createConnection({ host, port });
    // Its 'close' comes once its handle has closed (a socket's `closed` is true before that).
    const closed = new Promise<void>((r) => s.once('close', () => r()));
    let connected = false;
    let settled = false;
    const end = (p: EngineProbe) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      s.destroy();
      void closed.then(() => done(p));
    };
    const timer = setTimeout(() => end(connected ? { kind: 'silent' } : { kind: 'unreachable', code: 'ETIMEDOUT' }), ms);
    s.once('connect', () => {
      connected = true;
      if (!hello) return end({ kind: 'open' });
      s.write('PING\r\n');
    });
    s.once('data', (d: Buffer) => {
      const first = d[0]!;
      // A TLS record starts with 0x15 (an alert) or 0x16 (a handshake).
      end(first === 0x2b || first === 0x2d ? { kind: 'redis' } : first === 0x15 || first === 0x16 ? { kind: 'tls' } : { kind: 'other', first });
    });
    s.once('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'ECONNREFUSED') return end({ kind: 'refused' });
      // Reset after the connection opened: the server dropped the plain PING.
      if (connected && (e.code === 'ECONNRESET' || e.code === 'EPIPE')) return end({ kind: 'tls' });
      end({ kind: 'unreachable', code: e.code ?? e.message });
    });
    // Closed without a byte of answer after it opened: as a reset.
    s.once('close', () => end(connected ? { kind: 'tls' } : { kind: 'unreachable', code: 'closed' }));
  });
}

/** The sentence for an engine that refused the connection: host:port, and the URL (its password hidden). */
export function refusedText(url: string, shownUrl: string): string {
  return `the engine at ${engineAddress(url).shown} refused the connection (${shownUrl}: nothing listens on that port)`;
}

/**
 * Why an engine gave no answer within `ms` (a client's connection that timed out), from a plain
 * connection of the probe's (within `probeMs`, without a hello: it resolves as soon as it opens),
 * as the clause after "cannot reach URL", or undefined when the probe tells nothing more:
 * - it opened: the engine accepted the connection but did not answer (a server stopped with
 *   SIGSTOP, or overloaded: the kernel accepts for it);
 * - it did not open within the budget: no connection (a host down, or a firewall dropping it; a
 *   full accept queue looks the same);
 * - refused: nothing listens there now.
 */
export async function silenceText(url: string, shownUrl: string, ms: number, probeMs: number): Promise<string | undefined> {
  const p = await probeEngine(url, probeMs, false);
  if (p.kind === 'open') return `cannot reach ${shownUrl} within ${ms} ms: the engine at ${engineAddress(url).shown} accepted the connection but did not answer (stopped or overloaded?)`;
  if (p.kind === 'unreachable' && p.code === 'ETIMEDOUT') return `cannot reach ${shownUrl}: no connection within ${ms} ms (host down or filtered?)`;
  if (p.kind === 'refused') return refusedText(url, shownUrl);
  return undefined;
}

/** What a server that dropped a plain Redis hello is told to use. */
export const TLS_ONLY = 'the server there dropped a plain Redis hello (it reset or closed the connection, or answered in TLS), as a Redis with TLS does: use rediss://';
