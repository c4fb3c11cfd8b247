/// relay-milter's version, for `--version`, logs and the build_info metric.
public enum RelayMilterVersion {
    public static let current = "0.1.0"
}
