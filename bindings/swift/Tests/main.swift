// Swift tests of the popwire bindings: transcript replay through the sans-IO Engine, and
// Client / FetchJob against the test Dovecot (env file in $POPWIRE_DOVECOT).
// Compiled together with the generated Popwire.swift and Sources/Popwire/*.swift.
import Foundation

// ---- a tiny test runner ----------------------------------------------------------------------

nonisolated(unsafe) var passed = 0
nonisolated(unsafe) var failed = 0

struct Failure: Error, CustomStringConvertible { let description: String }

func check(_ cond: Bool, _ msg: @autoclosure () -> String) throws {
    if !cond { throw Failure(description: msg()) }
}

func test(_ name: String, _ body: () async throws -> Void) async {
    let t0 = Date()
    do {
        try await body()
        passed += 1
        print("ok   \(name) (\(Int(Date().timeIntervalSince(t0) * 1000)) ms)")
    } catch {
        failed += 1
        print("FAIL \(name): \(error)")
    }
}

func expectError(_ body: () async throws -> Void) async throws -> PopError {
    do {
        try await body()
    } catch let e as PopError {
        return e
    }
    throw Failure(description: "expected a PopError, nothing thrown")
}

// ---- transcript replay (format: tests/vectors/README.md) -------------------------------------

func unescape(_ text: Substring) -> [UInt8] {
    var out: [UInt8] = []
    let b = Array(text.utf8)
    var i = 0
    var crlf = true
    while i < b.count {
        if b[i] == 92 {
            if i + 1 >= b.count { crlf = false; break }
            switch b[i + 1] {
            case UInt8(ascii: "r"): out.append(13)
            case UInt8(ascii: "n"): out.append(10)
            case UInt8(ascii: "t"): out.append(9)
            case 92: out.append(92)
            case UInt8(ascii: "x"):
                out.append(UInt8(String(decoding: b[(i + 2)..<(i + 4)], as: UTF8.self), radix: 16)!)
                i += 2
            default: fatalError("bad escape in \(text)")
            }
            i += 2
        } else {
            out.append(b[i]); i += 1
        }
    }
    if crlf { out += [13, 10] }
    return out
}

func escape<S: Sequence>(_ bytes: S) -> String where S.Element == UInt8 {
    var s = ""
    for c in bytes {
        switch c {
        case 13: s += "\\r"
        case 10: s += "\\n"
        case 9: s += "\\t"
        case 92: s += "\\\\"
        case 0x20...0x7e: s.append(Character(UnicodeScalar(c)))
        default: s += String(format: "\\x%02x", c)
        }
    }
    return s
}

func esc(_ t: String) -> String { escape(Array(t.utf8)) }

func trimEnd(_ s: String) -> String {
    var s = Substring(s)
    while let last = s.last, last == " " { s = s.dropLast() }
    return String(s)
}

func capsLine(_ caps: [Capability]) -> String {
    caps.map { c -> String in
        switch c.name {
        case "SASL": return "SASL:" + c.args.joined(separator: ",")
        case "LOGIN-DELAY", "EXPIRE": return c.name + ":" + c.args[0]
        case "IMPLEMENTATION": return "IMPLEMENTATION:" + c.args[0].replacingOccurrences(of: " ", with: "_")
        default: return c.name
        }
    }.joined(separator: " ")
}

func replyLine(_ r: EngineReply) -> String {
    switch r {
    case let .ok(text): return "text " + esc(text)
    case .authenticated: return "authenticated"
    case let .stat(count, size): return "stat \(count) \(size)"
    case let .listing(entries): return trimEnd("list " + entries.map { "\($0.number):\($0.size)" }.joined(separator: " "))
    case let .listingOne(e): return "list-one \(e.number):\(e.size)"
    case let .uidl(entries): return trimEnd("uidl " + entries.map { "\($0.number):\(esc($0.uid))" }.joined(separator: " "))
    case let .uidlOne(e): return "uidl-one \(e.number):\(esc(e.uid))"
    case let .capabilities(caps): return trimEnd("capa " + capsLine(caps))
    case let .languages(langs): return "lang " + langs.map { "\($0.tag):\(esc($0.description))" }.joined(separator: " ")
    case let .retrieved(octets): return "retrieved \(octets)"
    case .tlsReady: return "tls-ready"
    case let .closed(text): return "closed " + esc(text)
    }
}

func failureLine(_ f: EngineFailure) -> String {
    if f.kind.hasPrefix("server") { return "server \(f.code ?? "-") \(esc(f.text))" }
    if let i = f.kind.firstIndex(of: ":") {
        return f.kind.replacingCharacters(in: i...i, with: " ")
    }
    return f.kind
}

enum Line {
    case option(String, String)
    case action(String)
    case client([UInt8])
    case server([UInt8])
    case event(String)
}

func parse(_ text: String) -> [Line] {
    text.split(separator: "\n", omittingEmptySubsequences: false)
        .map { $0.hasSuffix("\r") ? $0.dropLast() : $0 }
        .filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty && !$0.hasPrefix("#") }
        .map { l -> Line in
            if l.hasPrefix("option ") {
                let rest = l.dropFirst(7)
                let i = rest.firstIndex(of: " ")!
                return .option(String(rest[..<i]), rest[rest.index(after: i)...].trimmingCharacters(in: .whitespaces))
            }
            if l.hasPrefix("A: ") { return .action(l.dropFirst(3).trimmingCharacters(in: .whitespaces)) }
            if l.hasPrefix("C: ") { return .client(unescape(l.dropFirst(3))) }
            if l.hasPrefix("S: ") { return .server(unescape(l.dropFirst(3))) }
            if l.hasPrefix("E: ") { return .event(trimEnd(String(l.dropFirst(3)))) }
            if l == "S:" { return .server([13, 10]) }
            if l == "C:" { return .client([13, 10]) }
            fatalError("unknown transcript line: \(l)")
        }
}

func engineOptions(_ lines: [Line]) -> EngineOptions {
    var o = EngineOptions(security: .tls)
    for case let .option(k, v) in lines {
        let on = v == "on"
        switch k {
        case "security": o.security = v == "tls" ? .tls : v == "starttls" ? .startTls : .none
        case "negotiate": o.negotiate = on
        case "allow-cleartext": o.allowCleartextPassword = on
        case "pipelining": o.pipelining = on
        case "lenient-uids": o.lenientUids = on
        case "status-line": o.statusLineLimit = UInt64(v)!
        case "data-line": o.dataLineLimit = UInt64(v)!
        case "listing": o.listingLimit = UInt64(v)!
        default: fatalError("unknown option \(k)")
        }
    }
    return o
}

final class Run {
    let engine: Engine
    var log: [String] = []
    var bodies: [UInt64: [UInt8]] = [:]
    var written: [UInt8] = []
    var dead = false
    /// The first error, as a class vector's `class` line.
    var firstError: String?
    init(_ engine: Engine) { self.engine = engine }

    func record(_ line: String) { if firstError == nil { firstError = line } }
    func record(_ e: PopError) {
        var code = "-"
        if case let .Server(c, _, _, _, _) = e { code = c ?? "-" }
        record("class \(e.errorClass) \(code) \(e.temporary ? "temporary" : "permanent")")
    }
    func record(_ f: EngineFailure) {
        let code = f.errorClass == "server" ? (f.code ?? "-") : "-"
        record("class \(f.errorClass) \(code) \(f.temporary ? "temporary" : "permanent")")
    }

    func die(_ e: Error) { log.append("fatal \((e as! PopError).kind)"); record(e as! PopError); dead = true }

    func drain() {
        while !dead {
            let ev: EngineEvent?
            do { ev = try engine.pollEvent() } catch { die(error); break }
            guard let ev else { break }
            let line: String
            switch ev {
            case let .greeting(text, _): line = "greeting " + esc(text)
            case let .ready(caps): line = "ready " + capsLine(caps)
            case .tlsReady: line = "tls-ready"
            case let .body(id, data): bodies[id, default: []] += data; continue
            case let .completed(id, reply, failure):
                if case .retrieved = reply {
                    let body = bodies.removeValue(forKey: id) ?? []
                    log.append(trimEnd("body \(id) \(escape(body))"))
                }
                if let reply { line = "ok \(id) \(replyLine(reply))" } else {
                    record(failure!)
                    line = "err \(id) \(failureLine(failure!))"
                }
            }
            log.append(trimEnd(line))
        }
    }

    func flush() { while let b = engine.pollTransmit() { written += b } }

    func pump() {
        while true {
            let before = (written.count, log.count)
            flush(); drain()
            if (written.count, log.count) == before || dead { break }
        }
    }

    func act(_ action: String) {
        let w = action.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        func n(_ i: Int) -> UInt32 { UInt32(w[i])! }
        do {
            switch w[0] {
            case "capa": _ = try engine.capa()
            case "stls": _ = try engine.stls()
            case "user": _ = try engine.user(name: w[1])
            case "pass": _ = try engine.pass(password: w[1])
            case "apop": _ = try engine.apop(name: w[1], password: w[2])
            case "auth":
                let token = w[3].hasPrefix("token:")
                _ = try engine.authenticate(method: w[1], username: w[2],
                    secret: token ? String(w[3].dropFirst(6)) : w[3], isToken: token,
                    nonce: w.count > 4 ? w[4] : "0123456789abcdefghij")
            case "stat": _ = try engine.stat()
            case "list": _ = try engine.list(num: w.count > 1 ? n(1) : nil)
            case "uidl": _ = try engine.uidl(num: w.count > 1 ? n(1) : nil)
            case "retr": _ = try engine.retr(num: n(1))
            case "top": _ = try engine.top(num: n(1), lines: n(2))
            case "dele": _ = try engine.dele(num: n(1))
            case "noop": _ = try engine.noop()
            case "rset": _ = try engine.rset()
            case "quit": _ = try engine.quit()
            case "utf8": _ = try engine.utf8()
            case "lang": _ = try engine.lang(tag: w.count > 1 ? w[1] : nil)
            case "tls-established": try engine.tlsEstablished()
            case "eof":
                do { try engine.handleEof() } catch { die(error) }
            default: fatalError("unknown action \(w[0])")
            }
        } catch {
            log.append("refused \((error as! PopError).kind)")
            record(error as! PopError)
        }
    }
}

/// Replays with the server stream cut at `cut` (nil: one byte per read).
func replay(_ lines: [Line], _ cut: Int?) -> ([String], [UInt8], [UInt8]) {
    let (run, want) = replayRun(lines, cut)
    return (run.log, run.written, want)
}

func replayRun(_ lines: [Line], _ cut: Int?) -> (Run, [UInt8]) {
    let run = Run(Engine(options: engineOptions(lines)))
    var expectedWritten: [UInt8] = []
    var fed = 0
    var i = 0
    while i < lines.count {
        switch lines[i] {
        case .option, .event: i += 1
        case let .action(a):
            if !run.dead { run.act(a); run.pump() }
            i += 1
        case let .client(b): expectedWritten += b; i += 1
        case .server:
            run.flush()
            if run.written != expectedWritten { return (run, expectedWritten) }
            var block: [UInt8] = []
            while i < lines.count, case let .server(b) = lines[i] { block += b; i += 1 }
            var pieces: [[UInt8]]
            if let c = cut {
                if c > fed && c < fed + block.count {
                    pieces = [Array(block[..<(c - fed)]), Array(block[(c - fed)...])]
                } else {
                    pieces = [block]
                }
            } else {
                pieces = block.map { [$0] }
            }
            fed += block.count
            for p in pieces {
                if run.dead { break }
                do { try run.engine.handleInput(data: Data(p)) } catch { run.die(error); break }
                run.pump()
            }
        }
    }
    run.pump()
    return (run, expectedWritten)
}

/// tests/vectors/classes/*.class: the first error of each situation has the core's class.
func classTests(_ dir: String) async {
    let classes = dir + "/classes"
    let files = ((try? FileManager.default.contentsOfDirectory(atPath: classes)) ?? [])
        .filter { $0.hasSuffix(".class") }.sorted()
    if files.count < 15 { failed += 1; print("FAIL: expected the class vectors in \(classes), found \(files.count)") }
    for name in files {
        await test("class \(name)") {
            let text = try String(contentsOfFile: classes + "/" + name, encoding: .utf8)
            let all = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            let want = all.filter { $0.hasPrefix("class ") }
            let rest = all.filter { !$0.hasPrefix("class ") }
            try check(want.count == 1, "one class line")
            let (run, _) = replayRun(parse(rest.joined(separator: "\n")), 0)
            try check(run.firstError == want[0], "got \(run.firstError ?? "no error"), want \(want[0])")
        }
    }
}

func transcriptTests(_ dir: String) async {
    let files = ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? [])
        .filter { $0.hasSuffix(".pop3") }.sorted()
    if files.count < 20 { failed += 1; print("FAIL: expected the full vector set in \(dir), found \(files.count)") }
    for name in files {
        await test("transcript \(name)") {
            let lines = parse(try String(contentsOfFile: dir + "/" + name, encoding: .utf8))
            let expected = lines.compactMap { if case let .event(e) = $0 { return e } else { return nil } }
            let total = lines.reduce(0) { if case let .server(b) = $1 { return $0 + b.count } else { return $0 } }
            for cut in (0...total).map({ Optional($0) }) + [nil] {
                let (log, written, want) = replay(lines, cut)
                try check(log == expected && written == want,
                          "cut \(String(describing: cut)):\n events:   \(log)\n expected: \(expected)\n written:  \(escape(written))\n expected: \(escape(want))")
            }
        }
    }
}

// ---- Dovecot -----------------------------------------------------------------------------------

final class Dovecot: @unchecked Sendable {
    let env: [String: String]
    let host: String, tlsPort: UInt16, plainPort: UInt16, caFile: String, password: String
    let caPem: Data, wrongCaPem: Data
    private var counter = 0
    private var clock: UInt64 = 0
    private let lock = NSLock()

    init(_ path: String) throws {
        var env: [String: String] = [:]
        for line in try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n")
        where !line.hasPrefix("#") && line.contains("=") {
            let l = line.hasPrefix("export ") ? line.dropFirst(7) : line
            let i = l.firstIndex(of: "=")!
            env[String(l[..<i])] = String(l[l.index(after: i)...])
        }
        self.env = env
        func get(_ k: String) -> String { env["POPWIRE_DOVECOT_" + k]! }
        host = get("HOST"); tlsPort = UInt16(get("TLS_PORT"))!; plainPort = UInt16(get("PLAIN_PORT"))!
        caFile = get("CA_FILE"); password = get("PASSWORD")
        caPem = try Data(contentsOf: URL(fileURLWithPath: caFile))
        wrongCaPem = try Data(contentsOf: URL(fileURLWithPath: get("CA_DIR") + "/wrong-ca.pem"))
    }

    func newUser(_ tag: String) -> String {
        lock.lock(); defer { lock.unlock() }
        counter += 1
        return "sw-\(getpid())-\(tag)-\(counter)"
    }

    /// Seeds messages into the user's Maildir, in order; returns their UIDs.
    func seed(_ user: String, _ messages: [Data]) throws -> [String] {
        let fm = FileManager.default
        let md = env["POPWIRE_DOVECOT_HOME"]! + "/" + user + "/Maildir"
        let dirs = [env["POPWIRE_DOVECOT_HOME"]! + "/" + user, md, md + "/cur", md + "/new", md + "/tmp"]
        for d in dirs {
            try fm.createDirectory(atPath: d, withIntermediateDirectories: true)
            if getuid() == 0 {
                try fm.setAttributes([.ownerAccountID: Int(env["POPWIRE_DOVECOT_MAIL_UID"]!)!,
                                      .groupOwnerAccountID: Int(env["POPWIRE_DOVECOT_MAIL_GID"]!)!], ofItemAtPath: d)
            }
        }
        var names: [String] = []
        for (n, msg) in messages.enumerated() {
            lock.lock()
            clock = max(clock + 1, UInt64(Date().timeIntervalSince1970 * 1_000_000))
            let us = clock
            lock.unlock()
            var lf = 0
            var prev: UInt8 = 0
            for b in msg { if b == 10 && prev != 13 { lf += 1 }; prev = b }
            let name = "\(us / 1_000_000).M\(us % 1_000_000)P\(getpid())Q\(n).sw,S=\(msg.count),W=\(msg.count + lf)"
            try msg.write(to: URL(fileURLWithPath: md + "/tmp/" + name))
            try fm.setAttributes([.posixPermissions: 0o644], ofItemAtPath: md + "/tmp/" + name)
            try fm.moveItem(atPath: md + "/tmp/" + name, toPath: md + "/new/" + name)
            names.append(name)
        }
        return names
    }
}

func message(_ i: Int, _ bodyLines: Int = 3) -> Data {
    var s = "From: a@example.com\r\nTo: b@example.com\r\nSubject: message \(i)\r\n\r\n"
    for l in 0..<bodyLines { s += "line \(l) of message \(i)\r\n" }
    s += ".starts with a dot\r\n"
    return Data(s.utf8)
}

func connected(_ d: Dovecot, _ user: String, _ security: Security = .tls) async throws -> Client {
    let c = Client()
    try await c.connect(host: d.host, port: security == .tls ? d.tlsPort : d.plainPort, security: security,
                        caPem: d.caPem, timeoutMs: 20_000)
    try await c.login(user: user, password: d.password)
    return c
}

final class Box<T>: @unchecked Sendable {
    var value: T
    let lock = NSLock()
    init(_ v: T) { value = v }
    func with<R>(_ f: (inout T) -> R) -> R { lock.lock(); defer { lock.unlock() }; return f(&value) }
}

func dovecotTests(_ d: Dovecot) async {
    await test("tls session: connect, login, stat, list, uidl, retr, top, dele, rset, noop, quit") {
        let user = d.newUser("session")
        let msgs = (1...3).map { message($0) }
        let uids = try d.seed(user, msgs)
        let c = try await connected(d, user)
        try check(c.isConnected(), "not connected")
        try check(try await c.capa().contains { $0.name == "UIDL" }, "no UIDL")
        let st = try await c.stat()
        try check(st.count == 3 && st.size == UInt64(msgs.reduce(0) { $0 + $1.count }), "stat \(st)")
        try check(try await c.list().map { $0.size } == msgs.map { UInt64($0.count) }, "list")
        try check(try await c.uidl().map { $0.uid } == uids, "uidl")
        try check(try await c.retr(num: 2) == msgs[1], "retr")
        let top = String(decoding: try await c.top(num: 1, lines: 0), as: UTF8.self)
        try check(top.hasPrefix("From: a@example.com") && !top.contains("line 0"), "top \(top)")
        try await c.dele(num: 1)
        try check(try await c.stat().count == 2, "dele")
        try await c.rset()
        try check(try await c.stat().count == 3, "rset")
        try await c.noop()
        _ = try await c.quit()
        try check(!c.isConnected(), "still connected")
    }

    await test("starttls session") {
        let user = d.newUser("stls")
        _ = try d.seed(user, [message(1)])
        let c = try await connected(d, user, .startTls)
        try check(try await c.stat().count == 1, "stat")
        _ = try await c.quit()
    }

    await test("streaming retrTo of a 50 MB message") {
        let user = d.newUser("big")
        let line = Array("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcd\r\n".utf8)
        let header = Array("Subject: big\r\n\r\n".utf8)
        let count = (50 * 1024 * 1024 - header.count) / line.count
        var big = header
        big.reserveCapacity(header.count + count * line.count)
        for _ in 0..<count { big += line }
        let bytes = Data(big)
        _ = try d.seed(user, [bytes])
        let c = try await connected(d, user)
        let state = Box((offset: 0, chunks: 0, same: true))
        let octets = try await c.retrTo(num: 1) { chunk in
            state.with { s in
                if s.same && s.offset + chunk.count <= bytes.count {
                    s.same = bytes[s.offset..<(s.offset + chunk.count)] == chunk
                } else { s.same = false }
                s.offset += chunk.count
                s.chunks += 1
            }
        }
        let s = state.with { $0 }
        try check(octets == UInt64(bytes.count) && s.offset == bytes.count && s.same, "octets \(octets) got \(s.offset) same \(s.same)")
        try check(s.chunks > 10, "not streamed: \(s.chunks) chunks")
        _ = try await c.quit()
    }

    await test("a sink that throws stops retrTo with its error") {
        let user = d.newUser("sinkerr")
        _ = try d.seed(user, [message(1, 20000)])
        let c = try await connected(d, user)
        let e = try await expectError {
            _ = try await c.retrTo(num: 1) { _ in throw PopError.Cancelled(kind: "cancelled", detail: "stop") }
        }
        guard case .Cancelled(_, "stop") = e else { throw Failure(description: "got \(e)") }
    }

    await test("wrong password is PopError.Auth") {
        let c = Client()
        try await c.connect(host: d.host, port: d.tlsPort, security: .tls, caPem: d.caPem, timeoutMs: 20_000)
        let e = try await expectError { try await c.login(user: d.newUser("auth"), password: "wrong-password") }
        guard case let .Auth(code, _, _, _) = e, code == "AUTH" else { throw Failure(description: "got \(e)") }
    }

    await test("wrong CA is PopError.Tls") {
        let e = try await expectError {
            try await Client().connect(host: d.host, port: d.tlsPort, security: .tls, caPem: d.wrongCaPem, timeoutMs: 20_000)
        }
        guard case .Tls("tls:certificate", _) = e else { throw Failure(description: "got \(e)") }
    }

    await test("connection refused is PopError.Network; commands before connect are Config") {
        let e = try await expectError {
            try await Client().connect(host: "127.0.0.1", port: 1, security: .tls, caPem: nil, timeoutMs: 5_000)
        }
        guard case .Network(false, "net:connect", _) = e else { throw Failure(description: "got \(e)") }
        let e2 = try await expectError { _ = try await Client().stat() }
        guard case .Config = e2 else { throw Failure(description: "got \(e2)") }
    }

    await test("concurrent calls from several tasks") {
        let user = d.newUser("conc")
        let msgs = (1...5).map { message($0) }
        _ = try d.seed(user, msgs)
        let shared = try await connected(d, user)
        let results = try await withThrowingTaskGroup(of: Int.self) { group in
            for i in 1...16 {
                group.addTask {
                    switch i % 4 {
                    case 0: return Int(try await shared.stat().count)
                    case 1: return try await shared.uidl().count
                    case 2: return try await shared.list().count
                    default: try await shared.noop(); return 5
                    }
                }
            }
            var all: [Int] = []
            for try await r in group { all.append(r) }
            return all
        }
        try check(results.count == 16 && results.allSatisfy { $0 == 5 }, "results \(results)")
        let others = try await withThrowingTaskGroup(of: Data.self) { group in
            for _ in 1...4 {
                group.addTask {
                    let c = try await connected(d, user)
                    let m = try await c.retr(num: 3)
                    _ = try await c.quit()
                    return m
                }
            }
            var all: [Data] = []
            for try await r in group { all.append(r) }
            return all
        }
        try check(others.allSatisfy { $0 == msgs[2] }, "retr in parallel")
        _ = try await shared.quit()
    }

    func account(_ user: String) -> Account {
        Account(name: user, username: user, password: d.password, server: d.host, port: d.tlsPort,
                security: .tls, caFile: d.caFile, keep: false, maxMessageSize: nil, timeoutMs: 20_000)
    }

    await test("fetch job: progress callback and summary") {
        let user = d.newUser("fetch")
        _ = try d.seed(user, (1...3).map { message($0) })
        let dest = NSTemporaryDirectory() + "popwire-sw-fetch-\(getpid())-\(user)"
        let events = Box([FetchProgress]())
        let summary = try await FetchJob(account: account(user), destination: dest)
            .run(listener: ClosureListener { p in events.with { $0.append(p) } })
        let ev = events.with { $0 }
        try check(summary.fetched == 3 && summary.deleted == 3, "summary \(summary)")
        guard case .loggedIn = ev.first else { throw Failure(description: "events \(ev)") }
        try check(ev.filter { if case .message = $0 { return true } else { return false } }.count == 3, "events \(ev)")
        try check(ev.contains { if case .listed(_, 3, _) = $0 { return true } else { return false } }, "events \(ev)")
        try check(try FileManager.default.contentsOfDirectory(atPath: dest + "/new").count == 3, "stored")
        try? FileManager.default.removeItem(atPath: dest)
    }

    await test("fetch job: cancellation") {
        let user = d.newUser("cancel")
        _ = try d.seed(user, (1...30).map { message($0, 200) })
        let dest = NSTemporaryDirectory() + "popwire-sw-cancel-\(getpid())-\(user)"
        let job = FetchJob(account: account(user), destination: dest)
        job.setBatchSize(messages: 1)
        let count = Box(0)
        let e = try await expectError {
            _ = try await job.run(listener: ClosureListener { p in
                if case .message = p, count.with({ $0 += 1; return $0 }) == 2 { job.cancel() }
            })
        }
        guard case .Cancelled = e else { throw Failure(description: "got \(e)") }
        let stored = (try? FileManager.default.contentsOfDirectory(atPath: dest + "/new").count) ?? 0
        let n = count.with { $0 }
        try check(n >= 2 && n < 30 && stored < 30, "messages \(n) stored \(stored)")
        try? FileManager.default.removeItem(atPath: dest)
    }
}

// ---- popwire serve (the engine's server role over a Maildir, plain TCP) ----------------------

func serveTests(_ addr: String, _ maildir: String) async {
    await test("popwire serve: connect, login, stat, list, uidl, retr, quit") {
        let i = addr.lastIndex(of: ":")!
        let host = String(addr[..<i]), port = UInt16(addr[addr.index(after: i)...])!
        let fm = FileManager.default
        let files = try fm.contentsOfDirectory(atPath: maildir + "/new")
            .map { try Data(contentsOf: URL(fileURLWithPath: maildir + "/new/" + $0)) }
        let c = Client()
        try await c.connect(host: host, port: port, security: .none, caPem: nil, timeoutMs: 20_000)
        try await c.login(user: "user", password: "popwire-serve-pw")
        let st = try await c.stat()
        try check(Int(st.count) == files.count && st.size == UInt64(files.reduce(0) { $0 + $1.count }), "stat \(st)")
        try check(try await c.list().count == files.count, "list")
        try check(Set(try await c.uidl().map { $0.uid }).count == files.count, "uidl")
        var got: [String] = []
        for n in 1...files.count { got.append(String(decoding: try await c.retr(num: UInt32(n)), as: UTF8.self)) }
        try check(got.sorted() == files.map { String(decoding: $0, as: UTF8.self) }.sorted(), "retr \(got)")
        let e = try await expectError { _ = try await c.retr(num: 99) }
        guard case .Server(_, _, _, "server:refused", _) = e else { throw Failure(description: "got \(e)") }
        _ = try await c.quit()
    }
}

let args = CommandLine.arguments
await transcriptTests(args.count > 1 ? args[1] : "../tests/vectors")
await classTests(args.count > 1 ? args[1] : "../tests/vectors")
if let env = ProcessInfo.processInfo.environment["POPWIRE_DOVECOT"] {
    do { await dovecotTests(try Dovecot(env)) } catch { failed += 1; print("FAIL: Dovecot env: \(error)") }
} else {
    failed += 1
    print("FAIL: POPWIRE_DOVECOT is not set")
}
if let addr = ProcessInfo.processInfo.environment["POPWIRE_STALL"] {
    await test("a server that never answers is PopError.Timeout") {
        let i = addr.firstIndex(of: ":")!
        let t0 = Date()
        let e = try await expectError {
            try await Client().connect(host: String(addr[..<i]), port: UInt16(addr[addr.index(after: i)...])!,
                                       security: .none, caPem: nil, timeoutMs: 300)
        }
        let ms = Int(Date().timeIntervalSince(t0) * 1000)
        guard case .Timeout("net:timeout", _) = e, ms < 5_000 else { throw Failure(description: "got \(e) after \(ms) ms") }
    }
}
if let addr = ProcessInfo.processInfo.environment["POPWIRE_STALL_SESSION"] {
    await test("cancelling a Task stops the Rust call stalled on a silent server") {
        let i = addr.firstIndex(of: ":")!
        let c = Client()
        try await c.connect(host: String(addr[..<i]), port: UInt16(addr[addr.index(after: i)...])!,
                            security: .none, caPem: nil, timeoutMs: 30_000)
        let task = Task { try await c.cancellable { try await c.capa() } }
        try await Task.sleep(nanoseconds: 300_000_000)
        let t0 = Date()
        task.cancel()
        let result = await task.result
        let ms = Int(Date().timeIntervalSince(t0) * 1000)
        guard case .failure(let e as PopError) = result, case .Cancelled = e else {
            throw Failure(description: "got \(result)")
        }
        try check(ms < 3_000 && !c.isConnected(), "still running after \(ms) ms")
    }
}
if let serve = ProcessInfo.processInfo.environment["POPWIRE_SERVE"] {
    await serveTests(serve, ProcessInfo.processInfo.environment["POPWIRE_SERVE_MAILDIR"]!)
}
print("swift: \(passed) passed, \(failed) failed")
exit(failed == 0 ? 1 - 1 : 1)
