import DNSBL
import DNSBLNIO
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import RelayConfig
import RelayPolicy

/// The connect path's view of the configured DNS blocklists: only answers
/// already cached count; a client without one gets its lookups queued, and
/// they run in the background, so no milter callback ever waits on DNS.
/// Answers are kept for their TTL (a listing's A record, a "no such name"'s
/// SOA minimum), within bounds.
final class DNSBLLookups: Sendable {
    private struct Key: Hashable {
        let zone: String
        let address: IPAddress
    }

    private enum Answer {
        case listed(text: String)
        case notListed
        /// No usable answer (timeout, server failure): asked again after a while.
        case failed
    }

    private struct Entry {
        let answer: Answer
        let until: Date
    }

    private struct State {
        var entries: [Key: Entry] = [:]
        var pending: Set<Key> = []
    }

    /// Lookups at once, at most; beyond it a client is asked about at a later connection.
    static let maxInFlight = 64
    static let maxEntries = 200_000
    static let ttlBounds = (listed: 60...86400, notListed: 60...3600)
    static let defaultNegativeTTL = 300
    static let failureRetrySeconds = 60

    private let resolver: DNSResolver
    private let metrics: RelayMetrics
    private let logger: Logger
    private let state = NIOLockedValueBox(State())

    init(resolver: DNSResolver, metrics: RelayMetrics, logger: Logger) {
        self.resolver = resolver
        self.metrics = metrics
        self.logger = logger
    }

    /// The first configured zone whose cached answer lists `address`; queues
    /// lookups for zones with no fresh answer. Never blocks.
    func listing(of address: IPAddress?, config: RelayMilterConfig, now: Date = Date()) -> DNSBLListing? {
        guard let address, !config.dnsbl.zones.isEmpty, !config.policy.isTrusted(address) else { return nil }
        var toAsk: [Key] = []
        let listing: DNSBLListing? = state.withLockedValue { state in
            for zone in config.dnsbl.zones {
                let key = Key(zone: zone, address: address)
                if let entry = state.entries[key], entry.until > now {
                    if case .listed(let text) = entry.answer { return DNSBLListing(zone: zone, text: text) }
                    continue
                }
                if !state.pending.contains(key), state.pending.count < Self.maxInFlight {
                    state.pending.insert(key)
                    toAsk.append(key)
                }
            }
            return nil
        }
        for key in toAsk {
            Task(priority: .background) { await self.lookUp(key) }
        }
        return listing
    }

    private func lookUp(_ key: Key) async {
        let name = switch key.address {
        case .v4(let bits): DNSMessage.blocklistName(ipv4: bits, zone: key.zone)
        case .v6(let bits): DNSMessage.blocklistName(ipv6: bits, zone: key.zone)
        }
        let (answer, ttl) = await ask(name, zone: key.zone)
        let until = Date().addingTimeInterval(TimeInterval(ttl))
        state.withLockedValue { state in
            state.pending.remove(key)
            if state.entries.count >= Self.maxEntries {
                let now = Date()
                state.entries = state.entries.filter { $0.value.until > now }
            }
            if state.entries.count < Self.maxEntries { state.entries[key] = Entry(answer: answer, until: until) }
        }
    }

    /// The answer and how many seconds to keep it.
    private func ask(_ name: String, zone: String) async -> (Answer, Int) {
        do {
            let answer = try await resolver.query(name, type: .a)
            switch answer.rcode {
            case .nameError:
                return notListed(answer)
            case .noError where answer.addresses.isEmpty:
                return notListed(answer)
            case .noError:
                // RFC 5782: a listing answers in 127.0.0.0/8; 127.255.255.0/24 is
                // how some lists say "query refused", which is not a listing.
                guard let first = answer.addresses.first(where: { $0.address >> 24 == 127 && $0.address >> 8 != 0x7F_FFFF }) else {
                    metrics.dnsblLookup("error")
                    return (.failed, Self.failureRetrySeconds)
                }
                metrics.dnsblLookup("listed")
                let text = (try? await resolver.query(name, type: .txt))?.texts.first.map(Self.printable)
                    ?? "listed (\(IPAddress.v4(first.address)))"
                return (.listed(text: text), Self.clamp(Int(first.ttl), Self.ttlBounds.listed))
            case .other(let code):
                metrics.dnsblLookup("error")
                logger.debug("DNSBL lookup failed", metadata: ["dnsbl.zone": "\(zone)", "dns.rcode": "\(code)"])
                return (.failed, Self.failureRetrySeconds)
            }
        } catch {
            metrics.dnsblLookup("error")
            logger.debug("DNSBL lookup failed", metadata: ["dnsbl.zone": "\(zone)", "error": "\(error)"])
            return (.failed, Self.failureRetrySeconds)
        }
    }

    /// No listing: kept for the zone's SOA minimum.
    private func notListed(_ answer: DNSMessage.Answer) -> (Answer, Int) {
        metrics.dnsblLookup("not_listed")
        return (.notListed, Self.clamp(answer.negativeTTL.map(Int.init) ?? Self.defaultNegativeTTL, Self.ttlBounds.notListed))
    }

    /// A list's text goes into SMTP replies and headers: printable ASCII, 200 bytes at most.
    static func printable(_ text: String) -> String {
        String(decoding: text.utf8.lazy.filter { (32...126).contains($0) }.prefix(200), as: UTF8.self)
    }

    private static func clamp(_ value: Int, _ bounds: ClosedRange<Int>) -> Int {
        min(max(value, bounds.lowerBound), bounds.upperBound)
    }
}

/// The DNS server to ask when `[dnsbl] resolver` is not set.
enum ResolvConf {
    /// The first `nameserver` line's address in resolv.conf text.
    static func firstNameserver(in text: String) -> IPAddress? {
        for line in text.split(whereSeparator: \.isNewline) {
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            if fields.count >= 2, fields[0] == "nameserver", let address = IPAddress(String(fields[1])) { return address }
        }
        return nil
    }
}
