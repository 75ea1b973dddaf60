// No Node types needed: Deno and Workers projects type-check this without @types/node.
import type { Capability, ListEntry, LoginMethod, UidlEntry } from './engine.js';

export * from './engine.js';

export interface ConnectOptions {
  host: string;
  /** Default 995 for `'tls'`, 110 otherwise. */
  port?: number;
  /** Default `'tls'` (implicit TLS). `'starttls'` upgrades the same socket with STLS before any
   * credential; `'none'` must be asked for. */
  security?: 'tls' | 'starttls' | 'none';
  /** Trusted CA certificates (PEM), as Node's `tls.connect` takes them: they replace the
   * bundled roots (add `...tls.rootCertificates` to keep those). Node, Deno, Bun; under workerd
   * a ConfigError (the CA goes in workerd's config). */
  ca?: string | Uint8Array | Array<string | Uint8Array>;
  /** A PEM file of CA certificates to trust, added to `ca` (not under workerd). */
  caFile?: string;
  /** Milliseconds to wait for the server, per step (connect, each reply). Default 60000. */
  timeout?: number;
  /** Allow a cleartext password on a connection without TLS (`security: 'none'`). */
  allowCleartextPassword?: boolean;
  /** Governs the whole session: aborting drops the connection (as `close()`) and rejects what
   * is pending with an `AbortError` (`errorClass` `'cancelled'`, `kind` `'cancelled'`). */
  signal?: AbortSignal;
}

/**
 * A POP3 session over the runtime's socket: `node:net`/`node:tls` in Node, Deno and Bun,
 * `cloudflare:sockets` under workerd. Methods return promises and may
 * be called without awaiting the previous one: commands are pipelined when the server allows.
 *
 * ```js
 * const client = await Client.connect({ host: 'pop.example.com' });
 * await client.login('me@example.com', 'app-password');
 * for (const { number } of await client.list()) {
 *   const message = await client.retr(number);
 * }
 * await client.quit();
 * ```
 */
export class Client {
  private constructor();
  /** Connects, reads the greeting, negotiates (CAPA; STLS for `'starttls'`); resolves when
   * the session can log in. */
  static connect(options: ConnectOptions): Promise<Client>;
  readonly greeting: string;
  readonly capabilities: Capability[];
  readonly isTls: boolean;
  /** Logs in with the strongest mechanism the server offers for a password (never APOP). */
  login(user: string, password: string, options?: { method?: LoginMethod }): Promise<void>;
  capa(): Promise<Capability[]>;
  stat(): Promise<{ count: number; size: number }>;
  list(): Promise<ListEntry[]>;
  list(number: number): Promise<ListEntry>;
  uidl(): Promise<UidlEntry[]>;
  uidl(number: number): Promise<UidlEntry>;
  /** The message, dot-unstuffed, CRLF line ends as sent. */
  retr(number: number): Promise<Uint8Array>;
  /** The message as a stream of chunks (async-iterable), with backpressure. */
  retrStream(number: number): ReadableStream<Uint8Array>;
  top(number: number, lines: number): Promise<Uint8Array>;
  dele(number: number): Promise<void>;
  rset(): Promise<void>;
  noop(): Promise<void>;
  /** QUIT: the server commits deletions; resolves to its text and closes the connection. */
  quit(): Promise<string>;
  /** Drops the connection without QUIT (no deletion is committed). */
  close(): void;
  [Symbol.asyncDispose](): Promise<void>;
}
