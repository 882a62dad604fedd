/**
 * What the command line finds at a lock space's engine when the store's own client could not say
 * it plainly: one plain TCP connection to the URL's host and port. Used only after a failure (why
 * `locksmith mount --store` could not connect) and beside a 'locks' request of a mount sharing its
 * lock space (an engine that refuses connections is said at once, not after requestTimeoutMs).
 */
import { createConnection } from 'node:net';

/**
 * - refused: nothing listens there (ECONNREFUSED);
 * - redis: it answered a plain PING as a Redis does ('+PONG', '-NOAUTH ...');
 * - tls: it answered with a TLS record, or reset or closed the connection on the plain PING, as a
 *   TLS server does (OpenSSL drops a client that does not open with a handshake);
 * - other: it answered something else (its first byte);
 * - open: it accepted the connection (only asked with `hello` false);
 * - silent: no answer within the budget;
 * - unreachable: another connect error (its code: EHOSTUNREACH, ENOTFOUND...).
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
 * bytes back; within `ms`. Never rejects.
 */
export function probeEngine(url: string, ms: number, hello = true): Promise<EngineProbe> {
  const { host, port } = engineAddress(url);
  return new Promise((done) => {
    const s = createConnection({ host, port });
    let connected = false;
    let settled = false;
    const end = (p: EngineProbe) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      s.destroy();
      done(p);
    };
    const timer = setTimeout(() => end({ kind: 'silent' }), ms);
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
