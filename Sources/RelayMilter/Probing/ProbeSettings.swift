import RelayConfig
import RelayProbe
import RelayProbeNIO

extension RelayMilterConfig.Probe {
    /// The state machine's configuration for one target.
    func machineConfiguration(for target: ProbeTarget) -> ProbeStateMachine.Configuration {
        ProbeStateMachine.Configuration(
            battery: BatteryParameters(testDomain: testDomain, recipientLocalPart: recipientLocalPart, senderLocalPart: senderLocalPart),
            heloName: heloName,
            confirmWithData: confirmWithData,
            ipLiteral: target.ipLiteral,
            pipelining: pipelining
        )
    }

    var timeouts: ProbeTimeouts {
        ProbeTimeouts(
            connect: .seconds(Int64(connectTimeoutSeconds)),
            command: .seconds(Int64(commandTimeoutSeconds)),
            total: .seconds(Int64(totalTimeoutSeconds))
        )
    }
}
