// The error classes, the same split as popwire's other front ends, and the one place that maps
// the engine's `kind` (`family:name`, Rust `Error::kind()`) to them.

/** Base class of every error popwire throws. `kind` is a stable `family:name`. */
export class PopwireError extends Error {
  constructor(message, { kind = 'popwire:error', cause } = {}) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = new.target.name;
    this.kind = kind;
  }
}

/** The server refused a command with `-ERR`. `code` is its RFC 2449 response code or `null`. */
export class ServerError extends PopwireError {
  constructor(message, { kind = 'server:refused', code = null, text = '', command = null, temporary = false, cause } = {}) {
    super(message, { kind, cause });
    this.code = code;
    this.text = text;
    this.command = command;
    /** True for `[IN-USE]`, `[LOGIN-DELAY]`, `[SYS/TEMP]`: retry later. */
    this.temporary = temporary;
  }
}

/** Login failed: the server refused the credentials (`[AUTH]`, or `-ERR` to PASS/APOP/AUTH),
 * or no acceptable mechanism, or the SASL exchange failed. */
export class AuthError extends ServerError {}

/** TLS failed or is unavailable: handshake or certificate error, STLS missing or refused, or a
 * cleartext password refused on a connection without TLS. No credential was sent. */
export class TlsError extends PopwireError {}

/** The server broke the protocol (or injected data around STLS); the session is over. */
export class ProtocolError extends PopwireError {}

/** The server did not answer within `timeout`. */
export class TimeoutError extends PopwireError {}

const TLS_POLICY = new Set(['policy:tls-unavailable', 'policy:cleartext-forbidden']);

/**
 * Turns an error thrown by the WebAssembly engine (a JS `Error` with `kind`, and for `-ERR`
 * `code`/`text`/`command`/`authFailure`/`temporary`) into its class. Anything else (a
 * PopwireError already, a wasm trap) is returned as it is.
 */
export function fromEngine(e) {
  if (e instanceof PopwireError || e === null || typeof e !== 'object' || typeof e.kind !== 'string') {
    return e;
  }
  const { kind, message } = e;
  const family = kind.slice(0, kind.indexOf(':'));
  if (family === 'server') {
    const Class = e.authFailure ? AuthError : ServerError;
    return new Class(message, { kind, code: e.code ?? null, text: e.text ?? '', command: e.command ?? null, temporary: !!e.temporary });
  }
  if (family === 'protocol') return new ProtocolError(message, { kind });
  if (TLS_POLICY.has(kind)) return new TlsError(message, { kind });
  if (family === 'sasl' || family === 'policy') return new AuthError(message, { kind, text: message });
  return new PopwireError(message, { kind });
}
