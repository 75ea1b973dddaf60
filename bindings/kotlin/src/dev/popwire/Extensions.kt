// Small idiomatic additions to the generated popwire bindings (popwire.kt).
package dev.popwire

/** The core's stable `family:kind` name of any [PopException], e.g. `protocol:bad-greeting`. */
val PopException.kind: String
    get() = when (this) {
        is PopException.Auth -> kind
        is PopException.Tls -> kind
        is PopException.Protocol -> kind
        is PopException.Server -> kind
        is PopException.Network -> kind
        is PopException.Timeout -> kind
        is PopException.Config -> kind
        is PopException.Storage -> kind
        is PopException.Cancelled -> kind
    }

/** The human-readable message of any [PopException]. */
val PopException.detail: String
    get() = when (this) {
        is PopException.Auth -> detail
        is PopException.Tls -> detail
        is PopException.Protocol -> detail
        is PopException.Server -> detail
        is PopException.Network -> detail
        is PopException.Timeout -> detail
        is PopException.Config -> detail
        is PopException.Storage -> detail
        is PopException.Cancelled -> detail
    }

/** The core's error class of any [PopException]: one subclass per class, so this is fixed. */
val PopException.errorClass: String
    get() = when (this) {
        is PopException.Auth -> "auth"
        is PopException.Tls -> "tls"
        is PopException.Protocol -> "protocol"
        is PopException.Server -> "server"
        is PopException.Network -> "network"
        is PopException.Timeout -> "timeout"
        is PopException.Config -> "config"
        is PopException.Storage -> "storage"
        is PopException.Cancelled -> "cancelled"
    }

/** True when trying the same call again later may work. */
val PopException.temporary: Boolean
    get() = when (this) {
        is PopException.Server -> temporary
        is PopException.Network -> temporary
        is PopException.Timeout -> true
        else -> false
    }

/** Streams a `RETR` into a Kotlin lambda: `client.retrTo(1u) { chunk -> out.write(chunk) }`. */
suspend fun Client.retrTo(num: UInt, onChunk: (ByteArray) -> Unit): ULong =
    retrTo(num, object : ChunkSink {
        override fun onChunk(chunk: ByteArray) = onChunk(chunk)
    })

/** Runs a fetch job with a Kotlin lambda for progress. */
suspend fun FetchJob.run(onProgress: (FetchProgress) -> Unit): FetchSummary =
    run(object : FetchListener {
        override fun onProgress(progress: FetchProgress) = onProgress(progress)
    })

/** Connects with Kotlin defaults: implicit TLS, system roots, 30 s timeout. */
suspend fun Client.connect(
    host: String,
    port: Int = 0,
    security: Security = Security.TLS,
    caPem: ByteArray? = null,
    timeoutMs: Long = 30_000,
) = connect(host, port.toUShort(), security, caPem, timeoutMs.toULong())
