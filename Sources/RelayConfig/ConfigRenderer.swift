/// The effective config as TOML, every key spelled out, for `check-config`:
/// the schema's tables and keys in order. The output loads back to the same config.
public enum ConfigRenderer {
    public static func render(_ config: RelayMilterConfig) -> String {
        var lines: [String] = []
        for (section, _) in ConfigSchema.sections {
            if !lines.isEmpty { lines.append("") }
            lines.append("[\(section)]")
            for key in ConfigSchema.keys where key.section == section {
                lines.append("\(key.name) = \(key.value(in: config))")
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
