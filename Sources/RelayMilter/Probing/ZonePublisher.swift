import Foundation
import Logging

/// Keeps `[publish] rbldnsd_file` up to date: at start and then every
/// `rbldnsd_interval`, the open relays in the in-memory index are written as
/// an rbldnsd zone (`RbldnsdZone`), replacing the file in one step. The
/// config is read at each round, so a reload takes effect at the next one.
/// A failing write is logged once, and so is its recovery.
struct ZonePublisher: Sendable {
    let store: ConfigStore
    let index: VerdictIndex
    let logger: Logger

    func run() async {
        var failing = false
        while !Task.isCancelled {
            let config = store.snapshot
            if let file = config.publish.rbldnsdFile {
                let zone = RbldnsdZone.render(index.allHosts(), badVerdicts: config.enforcement.badVerdicts,
                                              ttlSeconds: config.publish.dnsTTLSeconds, now: Date())
                do {
                    try AtomicFile.write(zone, to: file)
                    if failing {
                        logger.notice("the DNSBL zone is written again", metadata: ["publish.file": "\(file)"])
                        failing = false
                    }
                } catch {
                    if !failing {
                        logger.error("cannot write the DNSBL zone; trying again every interval", metadata: [
                            "publish.file": "\(file)", "error": "\(error)",
                        ])
                        failing = true
                    }
                }
            }
            try? await Task.sleep(for: .seconds(config.publish.intervalSeconds))
        }
    }
}
