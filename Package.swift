// swift-tools-version:6.0
import PackageDescription

// Dependency direction (a target imports only what it lists):
//   gatehouse ─► AuthServer ─► OAuthCore ─► OAuthCrypto ─► COpenSSL
//                    ├──────► OAuthSQLite ─► OAuthCore, CSQLite   (a backend of OAuthCore's storage contract)
//                    ├──────► OAuthPostgres ─► OAuthCore, CLibPQ  (the same contract, for several hosts)
//                    │        MemoryStore ─► OAuthCore            (the contract in memory, for tests)
//                    ├──────► FastCGI ─► CFastCGI, SystemCall
//                    ├──────► Prefork ─► CSystemShims, Logging, SystemCall
//                    ├──────► SharedWriteGate ─► CSystemShims
//                    └──────► Logging
let package = Package(
    name: "Gatehouse",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "gatehouse", targets: ["gatehouse"])
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache", from: "2.0.0"),
    ],
    targets: [
        // C libraries from Debian, wrapped once each.
        .systemLibrary(name: "CFastCGI", pkgConfig: "fcgi", providers: [.apt(["libfcgi-dev"])]),
        .systemLibrary(name: "CSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),
        .systemLibrary(name: "COpenSSL", pkgConfig: "openssl", providers: [.apt(["libssl-dev"])]),
        .systemLibrary(name: "CLibPQ", pkgConfig: "libpq", providers: [.apt(["libpq-dev"])]),
        // What Swift cannot do safely itself: signal handlers, wait-status macros, shared counters.
        .target(name: "CSystemShims"),

        .target(name: "OAuthCrypto", dependencies: ["COpenSSL"]),
        .target(name: "OAuthCore", dependencies: ["OAuthCrypto"]),
        .target(name: "OAuthSQLite", dependencies: ["OAuthCore", "CSQLite"]),
        .target(name: "OAuthPostgres", dependencies: ["OAuthCore", "CLibPQ"]),
        // The storage contract in memory: grant tests with a fixed clock, and the reference
        // the contract suite holds every backend to.
        .target(name: "MemoryStore", dependencies: ["OAuthCore"]),
        // System calls from Swift: EINTR retried, errno turned into what the caller can do.
        .target(name: "SystemCall"),
        .target(name: "FastCGI", dependencies: ["CFastCGI", "SystemCall"]),
        // logfmt lines to a file or stderr; every process writes through it.
        .target(name: "Logging"),
        // The master and its children: fork, reap, signals, scoreboard, task children.
        .target(name: "Prefork", dependencies: ["CSystemShims", "Logging", "SystemCall"]),
        // The cross-process lock around database writes, made before the master forks.
        .target(name: "SharedWriteGate", dependencies: ["CSystemShims"]),
        .target(
            name: "AuthServer",
            dependencies: [
                "OAuthCore", "OAuthCrypto", "OAuthSQLite", "OAuthPostgres", "FastCGI", "Prefork", "SharedWriteGate",
                "Logging",
                .product(name: "Mustache", package: "swift-mustache"),
            ],
            resources: [
                // Compiled into the binary so a copied binary needs no resource folder.
                .embedInCode("Browser/Pages/Templates/login.mustache"),
                .embedInCode("Browser/Pages/Templates/consent.mustache"),
                .embedInCode("Browser/Pages/Templates/error.mustache"),
                .embedInCode("Browser/Pages/Templates/logout.mustache"),
            ]
        ),
        .executableTarget(
            name: "gatehouse",
            dependencies: [
                "AuthServer", "OAuthCore", "OAuthSQLite", "OAuthPostgres", "OAuthCrypto",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),

        .testTarget(name: "OAuthCoreTests", dependencies: ["OAuthCore", "OAuthCrypto", "MemoryStore"]),
        // One suite, every backend: SQLite, memory, and PostgreSQL when GATEHOUSE_TEST_POSTGRES names one.
        .testTarget(name: "StoreContractTests",
                    dependencies: ["OAuthCore", "OAuthCrypto", "OAuthSQLite", "OAuthPostgres", "MemoryStore"]),
        .testTarget(name: "OAuthCryptoTests", dependencies: ["OAuthCrypto"]),
        .testTarget(name: "OAuthSQLiteTests", dependencies: ["OAuthSQLite", "OAuthCore", "OAuthCrypto"]),
        // Against a real server (GATEHOUSE_TEST_POSTGRES): lost connections, timeouts, migrations.
        .testTarget(name: "OAuthPostgresTests", dependencies: ["OAuthPostgres", "OAuthCore"]),
        // The worker's application (App.handle) over a real SQLite file: no nginx, no FastCGI.
        .testTarget(name: "AuthServerTests", dependencies: ["AuthServer", "OAuthCore", "OAuthSQLite", "OAuthPostgres", "OAuthCrypto"]),
        .testTarget(name: "LoggingTests", dependencies: ["Logging"]),
        // Process management (states, task children, accept back-off), the system-call
        // wrapper and the write gate; the tests fork real children.
        .testTarget(name: "PreforkTests", dependencies: ["Prefork", "SystemCall", "SharedWriteGate"]),
    ]
)
