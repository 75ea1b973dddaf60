// Small idiomatic additions to the generated popwire bindings (Popwire.swift).
import Foundation

extension PopError {
    /// The core's stable `family:kind` name, e.g. `protocol:bad-greeting`.
    public var kind: String {
        switch self {
        case let .Auth(_, _, kind, _): return kind
        case let .Server(_, _, _, kind, _): return kind
        case let .Network(_, kind, _): return kind
        case let .Tls(kind, _), let .Protocol(kind, _), let .Timeout(kind, _),
             let .Config(kind, _), let .Storage(kind, _), let .Cancelled(kind, _):
            return kind
        }
    }

    /// The human-readable message.
    public var detail: String {
        switch self {
        case let .Auth(_, _, _, detail): return detail
        case let .Server(_, _, _, _, detail): return detail
        case let .Network(_, _, detail): return detail
        case let .Tls(_, detail), let .Protocol(_, detail), let .Timeout(_, detail),
             let .Config(_, detail), let .Storage(_, detail), let .Cancelled(_, detail):
            return detail
        }
    }

    /// The core's error class: one case per class, so this is fixed.
    public var errorClass: String {
        switch self {
        case .Auth: return "auth"
        case .Tls: return "tls"
        case .Protocol: return "protocol"
        case .Server: return "server"
        case .Network: return "network"
        case .Timeout: return "timeout"
        case .Config: return "config"
        case .Storage: return "storage"
        case .Cancelled: return "cancelled"
        }
    }

    /// True when trying the same call again later may work.
    public var temporary: Bool {
        switch self {
        case let .Server(_, _, temporary, _, _): return temporary
        case let .Network(temporary, _, _): return temporary
        case .Timeout: return true
        default: return false
        }
    }
}

/// A `ChunkSink` from a closure.
public final class ClosureSink: ChunkSink, @unchecked Sendable {
    private let body: (Data) throws -> Void
    public init(_ body: @escaping (Data) throws -> Void) { self.body = body }
    public func onChunk(chunk: Data) throws { try body(chunk) }
}

/// A `FetchListener` from a closure.
public final class ClosureListener: FetchListener, @unchecked Sendable {
    private let body: (FetchProgress) -> Void
    public init(_ body: @escaping (FetchProgress) -> Void) { self.body = body }
    public func onProgress(progress: FetchProgress) { body(progress) }
}

extension Client {
    /// Streams a `RETR` into a closure.
    public func retrTo(num: UInt32, _ onChunk: @escaping (Data) throws -> Void) async throws -> UInt64 {
        try await retrTo(num: num, sink: ClosureSink(onChunk))
    }
}

extension Client {
    /// Runs `body` so that cancelling the current Task cancels the Rust call it waits on (and
    /// closes the session): uniffi's Swift async calls do not see Task cancellation.
    public func cancellable<T>(_ body: () async throws -> T) async throws -> T {
        try await withTaskCancellationHandler {
            try await body()
        } onCancel: {
            self.cancel()
        }
    }
}
