/**
 * A TCP proxy in front of a real redis-server that can lose a reply the way a network does: the
 * command gets through and runs, its reply never comes back, and the connections break. Tests
 * use it to make a step apply while its node hears nothing.
 */
import { createConnection, createServer, type Server, type Socket } from 'node:net';

export class CutProxy {
  private readonly clients = new Set<Socket>();
  /** While set, new connections are closed at once (the engine out of reach). */
  private refusing = false;
  private marker: { text: string; cut: () => void } | undefined;
  private holding: { text: string; held: () => void } | undefined;

  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  static async start(target: number): Promise<CutProxy> {
    let proxy!: CutProxy;
    const server = createServer((client) => proxy.accept(client, target));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const addr = server.address();
    if (addr === null || typeof addr === 'string') throw new Error('the proxy has no port');
    proxy = new CutProxy(server, addr.port);
    return proxy;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /**
   * The next command with `text` as one of its arguments reaches the engine; its reply (a script's 'ok')
   * and whatever follows on that connection are dropped, every connection then breaks, and new
   * ones are refused until pass(). Resolves once that happened.
   */
  loseReplyTo(text: string): Promise<void> {
    // As a whole argument of the command (RESP: the bytes between two CRLFs).
    return new Promise((cut) => (this.marker = { text: `\r\n${text}\r\n`, cut }));
  }

  /**
   * The next command with `text` as one of its arguments never reaches the engine: it and what
   * follows on its connection are held (dropped when the connection closes). Resolves once held.
   */
  holdNext(text: string): Promise<void> {
    return new Promise((held) => (this.holding = { text: `\r\n${text}\r\n`, held }));
  }

  /** Every connection breaks, and new ones are refused until pass(): the engine out of reach. */
  cut(): void {
    this.refusing = true;
    for (const c of [...this.clients]) c.destroy();
  }

  /** Connections go through again. */
  pass(): void {
    this.refusing = false;
  }

  private accept(client: Socket, target: number): void {
    if (this.refusing) {
      client.destroy();
      return;
    }
    this.clients.add(client);
    const upstream = createConnection(target, '127.0.0.1');
    let losing = false;
    let held: Buffer[] | undefined;
    const close = () => {
      client.destroy();
      upstream.destroy();
      this.clients.delete(client);
    };
    client.on('data', (b) => {
      if (held !== undefined) {
        held.push(b);
        return;
      }
      const h = this.holding;
      if (h !== undefined && b.includes(h.text)) {
        this.holding = undefined;
        held = [b];
        h.held();
        return;
      }
      const m = this.marker;
      if (m !== undefined && b.includes(m.text)) {
        this.marker = undefined;
        losing = true;
        const seen = (r: Buffer) => {
          // Replies to earlier commands on this connection (a reconnect's CLIENT SETNAME: '+OK')
          // may come first; the engine's 'ok' (lower case, a script's reply) is the one.
          if (!r.includes('\r\nok\r\n')) return;
          upstream.off('data', seen);
          // The engine ran the command; the answer is lost with every connection.
          this.refusing = true;
          for (const c of [...this.clients]) c.destroy();
          m.cut();
        };
        upstream.on('data', seen);
      }
      upstream.write(b);
    });
    upstream.on('data', (b) => {
      if (!losing) client.write(b);
    });
    client.on('close', close);
    client.on('error', close);
    upstream.on('close', close);
    upstream.on('error', close);
  }

  async stop(): Promise<void> {
    for (const c of this.clients) c.destroy();
    await new Promise((r) => this.server.close(r));
  }
}
