/// What to do with a denied recipient, per reason.
public enum PolicyAction: String, CaseIterable, Sendable, Codable {
    case accept
    case reject
    case tempfail
    case tag
}

/// The global roll-out mode.
public enum PolicyMode: String, CaseIterable, Sendable, Codable {
    /// Apply the configured actions.
    case enforce
    /// Turn rejects and tempfails into tags: mail flows, marked.
    case tagOnly = "tag-only"
    /// Change nothing in the mail flow; log and count what would have happened.
    case logOnly = "log-only"
}

/// The action configured for a decision and the one actually applied under the mode.
public struct ResolvedAction: Hashable, Sendable {
    public let configured: PolicyAction
    public let applied: PolicyAction

    public init(configured: PolicyAction, mode: PolicyMode) {
        self.configured = configured
        switch (mode, configured) {
        case (.enforce, _), (_, .accept): applied = configured
        case (.tagOnly, _): applied = .tag
        case (.logOnly, _): applied = .accept
        }
    }
}

/// Per-reason actions for denied recipients; anything not listed is rejected.
public struct ActionRules: Sendable, Equatable {
    public var actions: [ReasonCode: PolicyAction]
    public var mode: PolicyMode

    public init(actions: [ReasonCode: PolicyAction] = [:], mode: PolicyMode = .enforce) {
        self.actions = actions
        self.mode = mode
    }

    public func resolve(_ decision: Decision) -> ResolvedAction {
        let configured: PolicyAction = switch decision.verdict {
        case .allow, .observe: .accept
        case .deny: actions[decision.reason] ?? .reject
        }
        return ResolvedAction(configured: configured, mode: mode)
    }
}
