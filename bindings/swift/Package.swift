// swift-tools-version:5.9
// The popwire Swift package: the uniffi-generated `Popwire.swift` (copied into
// Sources/Popwire by `make-package.sh`, see ../README.md) over the `PopwireFFI` C module, which
// wraps the Rust static library (an xcframework on Apple platforms).
import PackageDescription

let package = Package(
    name: "Popwire",
    platforms: [.macOS(.v12), .iOS(.v15)],
    products: [
        .library(name: "Popwire", targets: ["Popwire"]),
    ],
    targets: [
        // Apple: `PopwireFFI.xcframework` built as described in ../README.md (headers and
        // module map from `uniffi-bindgen generate --language swift`, libpopwire_ffi.a per slice).
        .binaryTarget(name: "PopwireFFI", path: "PopwireFFI.xcframework"),
        .target(
            name: "Popwire",
            dependencies: ["PopwireFFI"],
            path: "Sources/Popwire"
        ),
    ]
)
