// Small idiomatic additions to the generated popwire bindings (Popwire.swift).
import Foundation

extension PopError {
    /// The core's stable `family:kind` name, e.g. `protocol:bad-greeting`.
    public var kind: String {
        switch self {
        case let .Server(_, _, _, kind, _): return kind
        case let .Auth(_, _, kind, _): return kind
        case let .Tls(kind, _), let .Protocol(kind, _), let .Timeout(kind, _),
             let .Config(kind, _), let .Io(kind, _), let .Cancelled(kind, _):
            return kind
        }
    }

    /// The human-readable message.
    public var detail: String {
        switch self {
        case let .Server(_, _, _, _, detail): return detail
        case let .Auth(_, _, _, detail): return detail
        case let .Tls(_, detail), let .Protocol(_, detail), let .Timeout(_, detail),
             let .Config(_, detail), let .Io(_, detail), let .Cancelled(_, detail):
            return detail
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
