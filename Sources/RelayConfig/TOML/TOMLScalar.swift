/// TOML's unquoted values: booleans, integers, floats and date-times, told
/// apart by their grammar (TOML 1.0, section by section).
enum TOMLScalar {
    typealias Token = ArraySlice<UInt8>

    /// The value the token spells, or nil if it spells none.
    static func value(_ token: Token) -> TOMLValue? {
        switch String(decoding: token, as: UTF8.self) {
        case "true": return .boolean(true)
        case "false": return .boolean(false)
        case "inf", "+inf": return .float(.infinity)
        case "-inf": return .float(-.infinity)
        case "nan", "+nan", "-nan": return .float(.nan)
        default: break
        }
        if isDateTime(token) { return .dateTime(String(decoding: token, as: UTF8.self)) }
        if let radix = radixPrefix(token) {
            let digits = token.dropFirst(2)
            guard end(ofDigits: digits, from: digits.startIndex, radix: radix) == digits.endIndex else { return nil }
            return Int(withoutUnderscores(digits), radix: radix).map(TOMLValue.integer)
        }
        guard let afterInteger = end(ofDecimalInteger: token) else { return nil }
        if afterInteger == token.endIndex {
            return Int(withoutUnderscores(token)).map(TOMLValue.integer)
        }
        guard isFloatTail(token[afterInteger...]) else { return nil }
        return Double(withoutUnderscores(token)).map(TOMLValue.float)
    }

    /// What is wrong with a token that looks like a number but is none, where
    /// something more precise than "not a value" can be said.
    static func problem(_ token: Token) -> String? {
        if let radix = radixPrefix(token) {
            let digits = token.dropFirst(2)
            return end(ofDigits: digits, from: digits.startIndex, radix: radix) == digits.endIndex
                ? "an integer beyond 64 bits" : "not a base-\(radix) integer"
        }
        if let afterInteger = end(ofDecimalInteger: token), afterInteger == token.endIndex {
            return "an integer beyond 64 bits"
        }
        if let first = token.first, first.isDigit {
            if isDate(token.prefix(10)) || token.contains(.colon) { return "not a valid date or time (1979-05-27T07:32:00Z)" }
            if token.count > 1, first == UInt8(ascii: "0"), token[token.startIndex + 1].isDigit {
                return "a number may not start with 0 (write 8, not 08)"
            }
        }
        return nil
    }

    private static func radixPrefix(_ token: Token) -> Int? {
        guard token.count > 2, token.first == UInt8(ascii: "0") else { return nil }
        switch token[token.startIndex + 1] {
        case UInt8(ascii: "x"): return 16
        case UInt8(ascii: "o"): return 8
        case UInt8(ascii: "b"): return 2
        default: return nil
        }
    }

    private static func withoutUnderscores(_ token: Token) -> String {
        String(decoding: token.filter { $0 != UInt8(ascii: "_") }, as: UTF8.self)
    }

    /// Digits of `radix` from `start`, single underscores only between two of
    /// them: where they end, or nil if none start there.
    private static func end(ofDigits token: Token, from start: Int, radix: Int = 10) -> Int? {
        func isDigit(_ byte: UInt8) -> Bool {
            switch radix {
            case 16: byte.isHexDigit
            case 8: (UInt8(ascii: "0")...UInt8(ascii: "7")).contains(byte)
            case 2: byte == UInt8(ascii: "0") || byte == UInt8(ascii: "1")
            default: byte.isDigit
            }
        }
        var index = start
        guard index < token.endIndex, isDigit(token[index]) else { return nil }
        index += 1
        while index < token.endIndex {
            if isDigit(token[index]) {
                index += 1
            } else if token[index] == UInt8(ascii: "_"), index + 1 < token.endIndex, isDigit(token[index + 1]) {
                index += 2
            } else {
                break
            }
        }
        return index
    }

    /// `[+-]?(0|[1-9](_?[0-9])*)` from the token's start: where it ends.
    private static func end(ofDecimalInteger token: Token) -> Int? {
        var index = token.startIndex
        if index < token.endIndex, token[index] == UInt8(ascii: "+") || token[index] == UInt8(ascii: "-") { index += 1 }
        guard index < token.endIndex else { return nil }
        if token[index] == UInt8(ascii: "0") {
            let next = index + 1
            return next < token.endIndex && (token[next].isDigit || token[next] == UInt8(ascii: "_")) ? nil : next
        }
        return end(ofDigits: token, from: index)
    }

    /// A fraction, an exponent, or both.
    private static func isFloatTail(_ tail: Token) -> Bool {
        var index = tail.startIndex
        if index < tail.endIndex, tail[index] == .dot {
            guard let afterFraction = end(ofDigits: tail, from: index + 1) else { return false }
            index = afterFraction
        }
        if index < tail.endIndex, tail[index] == UInt8(ascii: "e") || tail[index] == UInt8(ascii: "E") {
            index += 1
            if index < tail.endIndex, tail[index] == UInt8(ascii: "+") || tail[index] == UInt8(ascii: "-") { index += 1 }
            guard let afterExponent = end(ofDigits: tail, from: index) else { return false }
            index = afterExponent
        }
        return index > tail.startIndex && index == tail.endIndex
    }

    // MARK: Dates and times

    /// `YYYY-MM-DD`, a real day of the Gregorian calendar.
    static func isDate(_ token: Token) -> Bool {
        var reader = Reader(token)
        return reader.date() && reader.atEnd
    }

    /// An offset or local date-time, a local date, or a local time.
    static func isDateTime(_ token: Token) -> Bool {
        var reader = Reader(token)
        if token.count > 2, token[token.startIndex + 2] == .colon {
            return reader.time() && reader.atEnd
        }
        guard reader.date() else { return false }
        if reader.atEnd { return true }
        guard reader.take([UInt8(ascii: "T"), UInt8(ascii: "t"), .space]), reader.time() else { return false }
        if reader.atEnd { return true }
        if reader.take([UInt8(ascii: "Z"), UInt8(ascii: "z")]) { return reader.atEnd }
        guard reader.take([UInt8(ascii: "+"), UInt8(ascii: "-")]),
              let hours = reader.number(2), hours < 24, reader.take([.colon]),
              let minutes = reader.number(2), minutes < 60 else { return false }
        return reader.atEnd
    }

    private struct Reader {
        let token: Token
        var index: Int

        init(_ token: Token) {
            self.token = token
            self.index = token.startIndex
        }

        var atEnd: Bool { index == token.endIndex }

        mutating func take(_ choices: [UInt8]) -> Bool {
            guard index < token.endIndex, choices.contains(token[index]) else { return false }
            index += 1
            return true
        }

        /// Exactly `width` digits.
        mutating func number(_ width: Int) -> Int? {
            guard token.endIndex - index >= width, token[index..<index + width].allSatisfy(\.isDigit) else { return nil }
            defer { index += width }
            return Int(String(decoding: token[index..<index + width], as: UTF8.self))
        }

        mutating func date() -> Bool {
            guard let year = number(4), take([UInt8(ascii: "-")]), let month = number(2), (1...12).contains(month),
                  take([UInt8(ascii: "-")]), let day = number(2) else { return false }
            let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
            let days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1]
            return (1...days).contains(day)
        }

        /// `HH:MM:SS` with an optional fraction.
        mutating func time() -> Bool {
            guard let hours = number(2), hours < 24, take([.colon]), let minutes = number(2), minutes < 60,
                  take([.colon]), let seconds = number(2), seconds < 60 else { return false }
            if take([.dot]) {
                let start = index
                while index < token.endIndex, token[index].isDigit { index += 1 }
                return index > start
            }
            return true
        }
    }
}
