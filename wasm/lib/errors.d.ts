export interface PopwireErrorOptions {
  kind?: string;
  code?: string | null;
  text?: string | null;
  command?: string | null;
  temporary?: boolean;
  cause?: unknown;
}

/**
 * Base class of every error popwire throws (Python: `popwire.Error`). `kind` is a stable
 * `family:name`: the engine's (`server:refused`, `protocol:*`, `policy:*`, `sasl:*`,
 * `usage:*`) and the Node client's (`net:resolve`, `net:connect`, `net:io`, `net:timeout`,
 * `tls:certificate`, `tls:failed`, `config:ca-file`).
 */
export class PopwireError extends Error {
  constructor(message: string, options?: PopwireErrorOptions);
  readonly kind: string;
  /** For `-ERR`: the RFC 2449/3206 response code (`IN-USE`, `LOGIN-DELAY`, `SYS/TEMP`,
   * `SYS/PERM`, `AUTH`, ...), or `null`. */
  readonly code: string | null;
  /** For `-ERR`: the server's text after the code. */
  readonly text: string | null;
  /** The refused POP3 command, e.g. `RETR`, when there is one. */
  readonly command: string | null;
  /** True when trying again later may work without any change (`[IN-USE]`, `[LOGIN-DELAY]`,
   * `[SYS/TEMP]`, timeouts). */
  readonly temporary: boolean;
}

/** The server refused a command with `-ERR`; `code` and `text` say why. */
export class ServerError extends PopwireError {}

/** Logging in failed: wrong credentials (`[AUTH]`, or `-ERR` to PASS/APOP/AUTH without a
 * temporary code), no acceptable mechanism, or a failed SASL exchange. */
export class AuthError extends PopwireError {}

/** The certificate was rejected, the TLS handshake failed, or TLS was required but the server
 * did not offer it. Nothing secret was sent. */
export class TlsError extends PopwireError {}

/** The server broke the protocol (or injected data around STLS). */
export class ProtocolError extends PopwireError {}

/** The configuration cannot work: an unreadable CA file, or a cleartext password on a
 * connection without TLS that was not allowed (`allowCleartextPassword`). */
export class ConfigError extends PopwireError {}

/** The server did not answer within the timeout. */
export class TimeoutError extends PopwireError {}

/** The host did not resolve, refused the connection, or the connection broke. */
export class NetworkError extends PopwireError {}
