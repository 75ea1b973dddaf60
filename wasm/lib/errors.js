// The error classes, the same split as popwire's other front ends (Python: popwire.Error and
// its subclasses), and the one place that maps the engine's `kind` (`family:name`, Rust
// `Error::kind()`) to them.

/**
 * Base class of every error popwire throws. `kind` is a stable `family:name`; for a server's
 * `-ERR`, `code` (RFC 2449/3206 response code or null), `text` and `command` say more, and
 * `temporary` is true when trying again later may work without any change.
 */
export class PopwireError extends Error {
  constructor(message, { kind = 'error', code = null, text = null, command = null, temporary = false, cause } = {}) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = new.target.name;
    this.kind = kind;
    this.code = code;
    this.text = text;
    this.command = command;
    this.temporary = temporary;
  }
}

/** The server refused a command with `-ERR`; `code` and `text` say why. */
export class ServerError extends PopwireError {}

/** Logging in failed: wrong credentials, no acceptable mechanism, or a failed SASL exchange.
 * Fix the credentials. */
export class AuthError extends PopwireError {}

/** The certificate was rejected, the TLS handshake failed, or TLS was required but the server
 * did not offer it. Nothing secret was sent. */
export class TlsError extends PopwireError {}

/** The server broke the POP3 protocol (or an attacker tampered with the connection). */
export class ProtocolError extends PopwireError {}

/** The configuration cannot work: an unreadable CA file, or a cleartext password on a
 * connection without TLS that was not allowed. */
export class ConfigError extends PopwireError {}

/** The server did not answer in time. Retry later. */
export class TimeoutError extends PopwireError {}

/** The host did not resolve, refused the connection, or the connection broke. */
export class NetworkError extends PopwireError {}

/** The class for an engine error, by `kind` (as the Python binding maps them). */
function classOf(kind, authFailure, temporary) {
  const family = kind.slice(0, kind.indexOf(':'));
  switch (family) {
    case 'server':
      // A temporary code (`[IN-USE]` to PASS) is not a credential problem.
      return authFailure && !temporary ? AuthError : ServerError;
    case 'protocol':
      return ProtocolError;
    case 'sasl':
      return AuthError;
    case 'policy':
      if (kind === 'policy:tls-unavailable') return TlsError;
      if (kind === 'policy:cleartext-forbidden') return ConfigError;
      if (kind === 'policy:excessive') return ProtocolError;
      return AuthError; // no-mechanism, apop
    default:
      return PopwireError; // usage: a mistake in the calling code
  }
}

/**
 * Turns an error thrown by the WebAssembly engine (a JS `Error` with `kind`, and for `-ERR`
 * `code`/`text`/`command`/`authFailure`/`temporary`) into its class. Anything else (a
 * PopwireError already, a wasm trap) is returned as it is.
 */
export function fromEngine(e) {
  if (e instanceof PopwireError || e === null || typeof e !== 'object' || typeof e.kind !== 'string') {
    return e;
  }
  const Class = classOf(e.kind, !!e.authFailure, !!e.temporary);
  return new Class(e.message, {
    kind: e.kind,
    code: e.code ?? null,
    text: e.text ?? null,
    command: e.command ?? null,
    temporary: !!e.temporary,
  });
}
