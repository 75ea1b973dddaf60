// Kotlin tests of the popwire bindings: transcript replay through the sans-IO Engine, and
// Client / FetchJob against the test Dovecot (env file in $POPWIRE_DOVECOT).
import dev.popwire.*
import kotlinx.coroutines.*
import java.io.File
import java.nio.file.Files
import java.util.concurrent.atomic.AtomicInteger
import java.util.concurrent.atomic.AtomicLong
import java.util.zip.CRC32

// ---- a tiny test runner ----------------------------------------------------------------------

var passed = 0
var failed = 0

fun test(name: String, body: suspend CoroutineScope.() -> Unit) {
    val t0 = System.nanoTime()
    try {
        runBlocking { body() }
        passed++
        println("ok   $name (${(System.nanoTime() - t0) / 1_000_000} ms)")
    } catch (e: Throwable) {
        failed++
        println("FAIL $name: $e")
        e.printStackTrace(System.out)
    }
}

fun check(cond: Boolean, msg: () -> String) {
    if (!cond) throw AssertionError(msg())
}

inline fun <reified T : Throwable> expectThrows(block: () -> Unit): T {
    try {
        block()
    } catch (e: Throwable) {
        if (e is T) return e
        throw AssertionError("expected ${T::class.java.name}, got $e")
    }
    throw AssertionError("expected ${T::class.java.name}, nothing thrown")
}

// ---- transcript replay (format: tests/vectors/README.md) -------------------------------------

fun unescape(text: String): ByteArray {
    val out = java.io.ByteArrayOutputStream()
    val b = text.toByteArray(Charsets.UTF_8)
    var i = 0
    var crlf = true
    while (i < b.size) {
        if (b[i] == '\\'.code.toByte()) {
            if (i + 1 >= b.size) { crlf = false; break }
            when (b[i + 1].toInt().toChar()) {
                'r' -> out.write(13)
                'n' -> out.write(10)
                't' -> out.write(9)
                '\\' -> out.write(92)
                'x' -> { out.write(String(b, i + 2, 2, Charsets.US_ASCII).toInt(16)); i += 2 }
                else -> throw IllegalArgumentException("bad escape in $text")
            }
            i += 2
        } else {
            out.write(b[i].toInt()); i++
        }
    }
    if (crlf) { out.write(13); out.write(10) }
    return out.toByteArray()
}

fun escape(bytes: ByteArray): String {
    val s = StringBuilder()
    for (x in bytes) {
        val c = x.toInt() and 0xff
        when {
            c == 13 -> s.append("\\r")
            c == 10 -> s.append("\\n")
            c == 9 -> s.append("\\t")
            c == 92 -> s.append("\\\\")
            c in 0x20..0x7e -> s.append(c.toChar())
            else -> s.append("\\x%02x".format(c))
        }
    }
    return s.toString()
}

fun esc(text: String) = escape(text.toByteArray(Charsets.UTF_8))

fun capsLine(caps: List<Capability>): String = caps.joinToString(" ") { c ->
    when (c.name) {
        "SASL" -> "SASL:" + c.args.joinToString(",")
        "LOGIN-DELAY", "EXPIRE" -> c.name + ":" + c.args.first()
        "IMPLEMENTATION" -> "IMPLEMENTATION:" + c.args.first().replace(' ', '_')
        else -> c.name
    }
}

fun replyLine(r: EngineReply): String = when (r) {
    is EngineReply.Ok -> "text " + esc(r.text)
    is EngineReply.Authenticated -> "authenticated"
    is EngineReply.Stat -> "stat ${r.count} ${r.size}"
    is EngineReply.Listing -> ("list " + r.entries.joinToString(" ") { "${it.number}:${it.size}" }).trimEnd()
    is EngineReply.ListingOne -> "list-one ${r.entry.number}:${r.entry.size}"
    is EngineReply.Uidl -> ("uidl " + r.entries.joinToString(" ") { "${it.number}:${esc(it.uid)}" }).trimEnd()
    is EngineReply.UidlOne -> "uidl-one ${r.entry.number}:${esc(r.entry.uid)}"
    is EngineReply.Capabilities -> ("capa " + capsLine(r.capabilities)).trimEnd()
    is EngineReply.Languages -> "lang " + r.languages.joinToString(" ") { "${it.tag}:${esc(it.description)}" }
    is EngineReply.Retrieved -> "retrieved ${r.octets}"
    is EngineReply.TlsReady -> "tls-ready"
    is EngineReply.Closed -> "closed " + esc(r.text)
}

fun failureLine(f: EngineFailure): String =
    if (f.kind.startsWith("server")) "server ${f.code ?: "-"} ${esc(f.text)}"
    else f.kind.replaceFirst(':', ' ')

sealed class Line {
    data class Option(val k: String, val v: String) : Line()
    data class Action(val a: String) : Line()
    class Client(val b: ByteArray) : Line()
    class Server(val b: ByteArray) : Line()
    data class Event(val e: String) : Line()
}

fun parse(text: String): List<Line> = text.split("\n").map { it.removeSuffix("\r") }
    .filter { it.trim().isNotEmpty() && !it.startsWith("#") }
    .map { l ->
        when {
            l.startsWith("option ") -> {
                val rest = l.removePrefix("option "); val i = rest.indexOf(' ')
                Line.Option(rest.substring(0, i), rest.substring(i + 1).trim())
            }
            l.startsWith("A: ") -> Line.Action(l.substring(3).trim())
            l.startsWith("C: ") -> Line.Client(unescape(l.substring(3)))
            l.startsWith("S: ") -> Line.Server(unescape(l.substring(3)))
            l.startsWith("E: ") -> Line.Event(l.substring(3).trimEnd())
            l == "S:" -> Line.Server(byteArrayOf(13, 10))
            l == "C:" -> Line.Client(byteArrayOf(13, 10))
            else -> throw IllegalArgumentException("unknown transcript line: $l")
        }
    }

fun engineOptions(lines: List<Line>): EngineOptions {
    val o = EngineOptions(security = Security.TLS)
    for (l in lines) if (l is Line.Option) {
        val on = l.v == "on"
        when (l.k) {
            "security" -> o.security = when (l.v) {
                "tls" -> Security.TLS; "starttls" -> Security.START_TLS; "none" -> Security.NONE
                else -> throw IllegalArgumentException(l.v)
            }
            "negotiate" -> o.negotiate = on
            "allow-cleartext" -> o.allowCleartextPassword = on
            "pipelining" -> o.pipelining = on
            "lenient-uids" -> o.lenientUids = on
            "status-line" -> o.statusLineLimit = l.v.toULong()
            "data-line" -> o.dataLineLimit = l.v.toULong()
            "listing" -> o.listingLimit = l.v.toULong()
            else -> throw IllegalArgumentException("unknown option ${l.k}")
        }
    }
    return o
}

class Run(val engine: Engine) {
    val log = mutableListOf<String>()
    val bodies = HashMap<ULong, java.io.ByteArrayOutputStream>()
    val written = java.io.ByteArrayOutputStream()
    var dead = false
    /** The first error, as a class vector's `class` line. */
    var firstError: String? = null

    fun record(line: String) { if (firstError == null) firstError = line }
    fun record(e: PopException) =
        record("class ${e.errorClass} ${(e as? PopException.Server)?.code ?: "-"} ${if (e.temporary) "temporary" else "permanent"}")
    fun record(f: EngineFailure) =
        record("class ${f.errorClass} ${if (f.errorClass == "server") f.code ?: "-" else "-"} ${if (f.temporary) "temporary" else "permanent"}")

    fun die(e: PopException) { log.add("fatal ${e.kind}"); record(e); dead = true }

    fun drain() {
        while (!dead) {
            val ev = try { engine.pollEvent() } catch (e: PopException) { die(e); break } ?: break
            val line = when (ev) {
                is EngineEvent.Greeting -> "greeting " + esc(ev.text)
                is EngineEvent.Ready -> "ready " + capsLine(ev.capabilities)
                is EngineEvent.TlsReady -> "tls-ready"
                is EngineEvent.Body -> { bodies.getOrPut(ev.id) { java.io.ByteArrayOutputStream() }.write(ev.data); continue }
                is EngineEvent.Completed -> {
                    val r = ev.reply
                    if (r is EngineReply.Retrieved) {
                        val body = bodies.remove(ev.id)?.toByteArray() ?: ByteArray(0)
                        log.add("body ${ev.id} ${escape(body)}".trimEnd())
                    }
                    if (r != null) "ok ${ev.id} ${replyLine(r)}"
                    else { record(ev.failure!!); "err ${ev.id} ${failureLine(ev.failure!!)}" }
                }
            }
            log.add(line.trimEnd())
        }
    }

    fun flush() { while (true) { written.write(engine.pollTransmit() ?: break) } }

    fun pump() {
        while (true) {
            val before = written.size() to log.size
            flush(); drain()
            if ((written.size() to log.size) == before || dead) break
        }
    }

    fun act(action: String) {
        val w = action.split(Regex("\\s+"))
        fun n(i: Int) = w[i].toUInt()
        try {
            when (w[0]) {
                "capa" -> engine.capa()
                "stls" -> engine.stls()
                "user" -> engine.user(w[1])
                "pass" -> engine.pass(w[1])
                "apop" -> engine.apop(w[1], w[2])
                "auth" -> {
                    val token = w[3].startsWith("token:")
                    engine.authenticate(w[1], w[2], w[3].removePrefix("token:"), token,
                        w.getOrElse(4) { "0123456789abcdefghij" })
                }
                "stat" -> engine.stat()
                "list" -> engine.list(if (w.size > 1) n(1) else null)
                "uidl" -> engine.uidl(if (w.size > 1) n(1) else null)
                "retr" -> engine.retr(n(1))
                "top" -> engine.top(n(1), n(2))
                "dele" -> engine.dele(n(1))
                "noop" -> engine.noop()
                "rset" -> engine.rset()
                "quit" -> engine.quit()
                "utf8" -> engine.utf8()
                "lang" -> engine.lang(w.getOrNull(1))
                "tls-established" -> engine.tlsEstablished()
                "eof" -> try { engine.handleEof() } catch (e: PopException) { die(e) }
                else -> throw IllegalArgumentException("unknown action ${w[0]}")
            }
        } catch (e: PopException) {
            log.add("refused ${e.kind}")
            record(e)
        }
    }
}

/** Replays with the server stream cut at `cut` (null: one byte per read). */
fun replay(lines: List<Line>, cut: Int?): Triple<List<String>, ByteArray, ByteArray> {
    val (run, want) = replayRun(lines, cut)
    return Triple(run.log, run.written.toByteArray(), want)
}

fun replayRun(lines: List<Line>, cut: Int?): Pair<Run, ByteArray> {
    Engine(engineOptions(lines)).use { engine ->
        val run = Run(engine)
        val expectedWritten = java.io.ByteArrayOutputStream()
        var fed = 0
        var i = 0
        while (i < lines.size) {
            when (val l = lines[i]) {
                is Line.Option, is Line.Event -> i++
                is Line.Action -> { if (!run.dead) { run.act(l.a); run.pump() }; i++ }
                is Line.Client -> { expectedWritten.write(l.b); i++ }
                is Line.Server -> {
                    run.flush()
                    if (!run.written.toByteArray().contentEquals(expectedWritten.toByteArray()))
                        return run to expectedWritten.toByteArray()
                    val block = java.io.ByteArrayOutputStream()
                    while (i < lines.size && lines[i] is Line.Server) { block.write((lines[i] as Line.Server).b); i++ }
                    val b = block.toByteArray()
                    val pieces: List<ByteArray> = when {
                        cut == null -> b.map { byteArrayOf(it) }
                        cut > fed && cut < fed + b.size -> listOf(b.copyOfRange(0, cut - fed), b.copyOfRange(cut - fed, b.size))
                        else -> listOf(b)
                    }
                    fed += b.size
                    for (p in pieces) {
                        if (run.dead) break
                        try { engine.handleInput(p) } catch (e: PopException) { run.die(e); break }
                        run.pump()
                    }
                }
            }
        }
        run.pump()
        return run to expectedWritten.toByteArray()
    }
}

// tests/vectors/classes/*.class: the first error of each situation has the core's class.
fun classTests(dir: File) {
    val files = File(dir, "classes").listFiles { f -> f.name.endsWith(".class") }!!.sortedBy { it.name }
    check(files.size >= 15) { "expected the class vectors, found ${files.size}" }
    for (file in files) test("class ${file.name}") {
        val (want, rest) = file.readLines().partition { it.startsWith("class ") }
        val (run, _) = replayRun(parse(rest.joinToString("\n")), 0)
        check(run.firstError == want.single()) { "got ${run.firstError}, want ${want.single()}" }
    }
}

fun transcriptTests(dir: File) {
    val files = dir.listFiles { f -> f.name.endsWith(".pop3") }!!.sortedBy { it.name }
    check(files.size >= 20) { "expected the full vector set, found ${files.size}" }
    for (file in files) test("transcript ${file.name}") {
        val lines = parse(file.readText())
        val expected = lines.filterIsInstance<Line.Event>().map { it.e }
        val total = lines.filterIsInstance<Line.Server>().sumOf { it.b.size }
        for (cut in (0..total).map<Int, Int?> { it } + listOf(null)) {
            val (log, written, want) = replay(lines, cut)
            check(log == expected && written.contentEquals(want)) {
                "cut $cut:\n events:   $log\n expected: $expected\n written:  ${escape(written)}\n expected: ${escape(want)}"
            }
        }
    }
}

// ---- Dovecot -----------------------------------------------------------------------------------

class Dovecot(envFile: String) {
    val env: Map<String, String> = File(envFile).readLines()
        .filter { it.isNotBlank() && !it.startsWith("#") }
        .associate { val l = it.removePrefix("export "); val i = l.indexOf('='); l.substring(0, i) to l.substring(i + 1) }
    fun get(k: String) = env["POPWIRE_DOVECOT_$k"] ?: throw IllegalStateException("no $k in env file")
    val host = get("HOST")
    val tlsPort = get("TLS_PORT").toInt()
    val plainPort = get("PLAIN_PORT").toInt()
    val caFile = get("CA_FILE")
    val caPem = File(caFile).readBytes()
    val wrongCaPem = File(get("CA_DIR"), "wrong-ca.pem").readBytes()
    val password = get("PASSWORD")
    private val counter = AtomicInteger()
    private val clock = AtomicLong()

    fun newUser(tag: String) = "kt-${ProcessHandle.current().pid()}-$tag-${counter.incrementAndGet()}"

    /** Seeds messages (CRLF text) into the user's Maildir, in order; returns their UIDs. */
    fun seed(user: String, messages: List<ByteArray>): List<String> {
        val md = File(get("HOME"), "$user/Maildir")
        val dirs = listOf(md.parentFile, md, File(md, "cur"), File(md, "new"), File(md, "tmp"))
        dirs.forEach { it.mkdirs() }
        if (System.getProperty("user.name") == "root") for (d in dirs) {
            Files.setAttribute(d.toPath(), "unix:uid", get("MAIL_UID").toInt())
            Files.setAttribute(d.toPath(), "unix:gid", get("MAIL_GID").toInt())
        }
        return messages.mapIndexed { n, msg ->
            val us = clock.updateAndGet { maxOf(it + 1, System.currentTimeMillis() * 1000) }
            var lf = 0; var crlf = 0
            for (i in msg.indices) if (msg[i] == 10.toByte()) { if (i > 0 && msg[i - 1] == 13.toByte()) crlf++ else lf++ }
            val name = "${us / 1_000_000}.M${us % 1_000_000}P${ProcessHandle.current().pid()}Q$n.kt,S=${msg.size},W=${msg.size + lf}"
            val tmp = File(md, "tmp/$name")
            tmp.writeBytes(msg)
            tmp.setReadable(true, false)
            check(tmp.renameTo(File(md, "new/$name"))) { "rename failed" }
            name
        }
    }
}

fun message(i: Int, bodyLines: Int = 3): ByteArray {
    val sb = StringBuilder("From: a@example.com\r\nTo: b@example.com\r\nSubject: message $i\r\n\r\n")
    for (l in 0 until bodyLines) sb.append("line $l of message $i\r\n")
    sb.append(".starts with a dot\r\n")
    return sb.toString().toByteArray()
}

suspend fun connected(d: Dovecot, user: String, security: Security = Security.TLS): Client {
    val c = Client()
    c.connect(d.host, if (security == Security.TLS) d.tlsPort else d.plainPort, security, d.caPem, 20_000L)
    c.login(user, d.password)
    return c
}

fun dovecotTests(d: Dovecot) {
    test("tls session: connect, login, stat, list, uidl, retr, top, dele, rset, noop, quit") {
        val user = d.newUser("session")
        val msgs = (1..3).map { message(it) }
        val uids = d.seed(user, msgs)
        val c = connected(d, user)
        check(c.isConnected()) { "not connected" }
        check(c.capa().any { it.name == "UIDL" }) { "no UIDL in CAPA" }
        val st = c.stat()
        check(st.count == 3u && st.size == msgs.sumOf { it.size }.toULong()) { "stat $st" }
        check(c.list().map { it.size } == msgs.map { it.size.toULong() }) { "list" }
        val uidl = c.uidl()
        check(uidl.map { it.uid } == uids) { "uidl $uidl" }
        check(c.retr(2u).contentEquals(msgs[1])) { "retr" }
        val top = String(c.top(1u, 0u))
        check(top.startsWith("From: a@example.com") && !top.contains("line 0")) { "top $top" }
        c.dele(1u)
        check(c.stat().count == 2u) { "dele" }
        c.rset()
        check(c.stat().count == 3u) { "rset" }
        c.noop()
        c.quit()
        check(!c.isConnected()) { "still connected" }
    }

    test("starttls session") {
        val user = d.newUser("stls")
        d.seed(user, listOf(message(1)))
        val c = connected(d, user, Security.START_TLS)
        check(c.stat().count == 1u) { "stat" }
        c.quit()
    }

    test("streaming retrTo of a 50 MB message") {
        val user = d.newUser("big")
        val line = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcd\r\n".toByteArray()
        val header = "Subject: big\r\n\r\n".toByteArray()
        val count = (50 * 1024 * 1024 - header.size) / line.size
        val big = java.io.ByteArrayOutputStream(header.size + count * line.size)
        big.write(header); repeat(count) { big.write(line) }
        val bytes = big.toByteArray()
        val want = CRC32().apply { update(bytes) }.value
        d.seed(user, listOf(bytes))
        val c = connected(d, user)
        val crc = CRC32()
        var chunks = 0
        var got = 0L
        val octets = c.retrTo(1u) { chunk -> crc.update(chunk); chunks++; got += chunk.size }
        check(got == bytes.size.toLong() && octets == bytes.size.toULong()) { "got $got octets $octets want ${bytes.size}" }
        check(crc.value == want) { "crc" }
        check(chunks > 10) { "not streamed: $chunks chunks" }
        c.quit()
    }

    test("a sink that throws stops retrTo with its error") {
        val user = d.newUser("sinkerr")
        d.seed(user, listOf(message(1, 20000)))
        val c = connected(d, user)
        val e = expectThrows<PopException.Cancelled> {
            c.retrTo(1u, object : ChunkSink {
                override fun onChunk(chunk: ByteArray) { throw PopException.Cancelled("cancelled", "stop") }
            })
        }
        check(e.detail == "stop") { e.detail }
    }

    test("wrong password is PopException.Auth") {
        val c = Client()
        c.connect(d.host, d.tlsPort.toUShort(), Security.TLS, d.caPem, 20_000uL)
        val e = expectThrows<PopException.Auth> { c.login(d.newUser("auth"), "wrong-password") }
        check(e.code == "AUTH") { "code ${e.code}" }
    }

    test("wrong CA is PopException.Tls") {
        val e = expectThrows<PopException.Tls> {
            Client().connect(d.host, d.tlsPort.toUShort(), Security.TLS, d.wrongCaPem, 20_000uL)
        }
        check(e.kind == "tls:certificate") { e.kind }
    }

    test("connection refused is PopException.Network; commands before connect are Config") {
        val e = expectThrows<PopException.Network> { Client().connect("127.0.0.1", 1u, Security.TLS, null, 5_000uL) }
        check(e.kind == "net:connect" && !e.temporary) { e.kind }
        expectThrows<PopException.Config> { Client().stat() }
    }

    test("concurrent calls from several coroutines") {
        val user = d.newUser("conc")
        val msgs = (1..5).map { message(it) }
        d.seed(user, msgs)
        val shared = connected(d, user)
        val results = (1..16).map { i ->
            async(Dispatchers.Default) {
                when (i % 4) {
                    0 -> shared.stat().count.toInt()
                    1 -> shared.uidl().size
                    2 -> shared.list().size
                    else -> { shared.noop(); 5 }
                }
            }
        }.awaitAll()
        check(results.all { it == 5 }) { "results $results" }
        // and several clients at once
        val others = (1..4).map { async(Dispatchers.Default) { val c = connected(d, user); val n = c.retr(3u); c.quit(); n } }.awaitAll()
        check(others.all { it.contentEquals(msgs[2]) }) { "retr in parallel" }
        shared.quit()
    }

    test("fetch job: progress callback and summary") {
        val user = d.newUser("fetch")
        d.seed(user, (1..3).map { message(it) })
        val dest = Files.createTempDirectory("popwire-kt-fetch").toFile()
        val account = Account(name = user, username = user, password = d.password, server = d.host,
            port = d.tlsPort.toUShort(), security = Security.TLS, caFile = d.caFile)
        val events = mutableListOf<FetchProgress>()
        val summary = FetchJob(account, dest.path).run { p -> synchronized(events) { events.add(p) } }
        check(summary.fetched == 3uL && summary.deleted == 3uL) { "summary $summary" }
        check(events.first() is FetchProgress.LoggedIn) { "events $events" }
        check(events.count { it is FetchProgress.Message } == 3) { "events $events" }
        check(events.any { it is FetchProgress.Listed && it.new == 3uL }) { "events $events" }
        check(File(dest, "new").listFiles()!!.size == 3) { "stored" }
        dest.deleteRecursively()
    }

    test("fetch job: cancellation") {
        val user = d.newUser("cancel")
        d.seed(user, (1..30).map { message(it, 200) })
        val dest = Files.createTempDirectory("popwire-kt-cancel").toFile()
        val account = Account(name = user, username = user, password = d.password, server = d.host,
            port = d.tlsPort.toUShort(), security = Security.TLS, caFile = d.caFile)
        val job = FetchJob(account, dest.path)
        job.setBatchSize(1u)
        val messages = AtomicInteger()
        expectThrows<PopException.Cancelled> {
            job.run { p -> if (p is FetchProgress.Message && messages.incrementAndGet() == 2) job.cancel() }
        }
        val stored = File(dest, "new").listFiles()?.size ?: 0
        check(messages.get() in 2..29 && stored < 30) { "messages ${messages.get()} stored $stored" }
        dest.deleteRecursively()
    }
}

// ---- popwire serve (the engine's server role over a Maildir, plain TCP) ----------------------

fun serveTests(addr: String, maildir: String) = test("popwire serve: connect, login, stat, list, uidl, retr, quit") {
    val (host, port) = addr.substringBeforeLast(':') to addr.substringAfterLast(':').toInt()
    val files = File(maildir, "new").listFiles()!!.map { it.readBytes() }
    val c = Client()
    c.connect(host, port.toUShort(), Security.NONE, null, 20_000uL)
    c.login("user", "popwire-serve-pw")
    val st = c.stat()
    check(st.count.toInt() == files.size && st.size == files.sumOf { it.size }.toULong()) { "stat $st" }
    check(c.list().size == files.size) { "list" }
    check(c.uidl().map { it.uid }.toSet().size == files.size) { "uidl" }
    val got = (1..files.size).map { String(c.retr(it.toUInt())) }.sorted()
    check(got == files.map { String(it) }.sorted()) { "retr $got" }
    val e = expectThrows<PopException.Server> { c.retr(99u) }
    check(e.kind == "server:refused") { e.kind }
    c.quit()
}

// ---- cancellation: a cancelled coroutine stops the Rust call ---------------------------------

fun cancelTests(addr: String) {
    val host = addr.substringBefore(':')
    val port = addr.substringAfter(':').toUShort()
    test("cancelling a coroutine stops the Rust call stalled on a silent server") {
        val c = Client()
        c.connect(host, port, Security.NONE, null, 30_000uL)
        val job = launch(Dispatchers.Default) { c.capa() }
        delay(300)
        val t0 = System.nanoTime()
        job.cancelAndJoin()
        // isConnected() takes the session's lock, which the stalled call holds: it answers only
        // once the Rust call has stopped (else after the 30 s timeout).
        val connected = withContext(Dispatchers.IO) { c.isConnected() }
        val ms = (System.nanoTime() - t0) / 1_000_000
        check(!connected && ms < 3_000) { "connected=$connected after $ms ms" }
        check(job.isCancelled) { "job not cancelled" }
        // The session is closed: the next call says so at once.
        expectThrows<PopException.Config> { c.noop() }
    }
    test("a call cancelled while waiting for the session never runs") {
        val c = Client()
        c.connect(host, port, Security.NONE, null, 30_000uL)
        val first = launch(Dispatchers.Default) { c.capa() }
        delay(200)
        val second = launch(Dispatchers.Default) { c.capa() }
        delay(200)
        second.cancelAndJoin()
        first.cancelAndJoin()
        val t0 = System.nanoTime()
        val connected = withContext(Dispatchers.IO) { c.isConnected() }
        check(!connected && (System.nanoTime() - t0) / 1_000_000 < 3_000) { "still connected" }
    }
}

fun main(args: Array<String>) {
    val vectors = File(args.getOrElse(0) { "../tests/vectors" })
    transcriptTests(vectors)
    classTests(vectors)
    val env = System.getenv("POPWIRE_DOVECOT")
    if (env != null) dovecotTests(Dovecot(env)) else { println("FAIL: POPWIRE_DOVECOT is not set"); failed++ }
    System.getenv("POPWIRE_STALL")?.let { addr ->
        test("a server that never answers is PopException.Timeout") {
            val t0 = System.nanoTime()
            val e = expectThrows<PopException.Timeout> {
                Client().connect(addr.substringBefore(':'), addr.substringAfter(':').toUShort(), Security.NONE, null, 300uL)
            }
            val ms = (System.nanoTime() - t0) / 1_000_000
            check(e.kind == "net:timeout" && ms < 5_000) { "${e.kind} after $ms ms" }
        }
    }
    System.getenv("POPWIRE_STALL_SESSION")?.let { addr -> cancelTests(addr) }
    val serve = System.getenv("POPWIRE_SERVE")
    if (serve != null) serveTests(serve, System.getenv("POPWIRE_SERVE_MAILDIR")!!)
    println("kotlin: $passed passed, $failed failed")
    System.exit(if (failed == 0) 0 else 1)
}
