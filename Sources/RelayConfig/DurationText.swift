/// A span of time as the config file and the command line write it:
/// `90` or `90s`, `30m`, `6h`, `7d`; and back, in the largest whole unit.
public enum DurationText {
    /// Ten years. Nothing relay-milter times (a cache TTL, a retention, an
    /// interval) means anything beyond it, and a bound keeps every sum with a
    /// clock reading far from overflowing.
    public static let maximumSeconds = 3650 * 86400

    public enum ParseError: Error, Equatable, CustomStringConvertible {
        case malformed(String)
        case tooLong(String)

        public var description: String {
            switch self {
            case .malformed(let text):
                "\"\(text)\" is not a duration: expected a whole number with s, m, h or d, such as \"90s\", \"30m\", \"6h\" or \"7d\""
            case .tooLong(let text):
                "\"\(text)\" is longer than \(DurationText.text(maximumSeconds)), the longest duration relay-milter takes"
            }
        }
    }

    private static let units: [(suffix: Character, seconds: Int)] = [("d", 86400), ("h", 3600), ("m", 60), ("s", 1)]

    public static func seconds(_ text: String) throws(ParseError) -> Int {
        guard let last = text.last else { throw .malformed(text) }
        let digits = last.isASCII && last.isNumber ? Substring(text) : text.dropLast()
        guard let unit = last.isASCII && last.isNumber ? 1 : units.first(where: { $0.suffix == last })?.seconds,
              !digits.isEmpty, digits.utf8.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) })
        else { throw .malformed(text) }
        // Digits alone may not fit an Int, and a count that does may overflow
        // once multiplied by its unit: both are simply too long.
        guard let count = Int(digits) else { throw .tooLong(text) }
        let (seconds, overflow) = count.multipliedReportingOverflow(by: unit)
        guard !overflow, seconds <= maximumSeconds else { throw .tooLong(text) }
        return seconds
    }

    /// Seconds in the largest whole unit: `7d`, `6h`, `30m`, `90s`.
    public static func text(_ seconds: Int) -> String {
        for (suffix, size) in units where size > 1 && seconds > 0 && seconds % size == 0 {
            return "\(seconds / size)\(suffix)"
        }
        return "\(seconds)s"
    }
}
