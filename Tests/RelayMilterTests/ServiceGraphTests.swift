import Logging
@testable import RelayMilter
import Testing

struct ServiceGraphTests {
    final class Events {
        var list: [String] = []
    }

    @Test func stopsInTheReverseOrderOfStarting() {
        let events = Events()
        let graph = ServiceGraph(logger: Logger(label: "test"))
        for name in ["database", "tests", "milter"] {
            graph.start(DaemonService(name: name, start: { events.list.append("start \(name)") }, stop: { events.list.append("stop \(name)") }))
        }
        #expect(graph.stopOrder == ["milter", "tests", "database"])
        graph.stopAll()
        #expect(events.list == ["start database", "start tests", "start milter", "stop milter", "stop tests", "stop database"])
        graph.stopAll() // nothing left to stop
        #expect(events.list.count == 6)
    }

    @Test func aTaskServiceFlushesBeforeItsCancelAndWritesAfter() async {
        let events = Events()
        let graph = ServiceGraph(logger: Logger(label: "test"))
        let ended = AsyncStream<Void>.makeStream()
        graph.start(.task("history", {
            while !Task.isCancelled { try? await Task.sleep(for: .milliseconds(5)) }
            ended.continuation.yield()
        }, beforeCancel: { events.list.append("flush") }, afterCancel: { events.list.append("write") }))
        graph.stopAll()
        #expect(events.list == ["flush", "write"])
        var iterator = ended.stream.makeAsyncIterator()
        _ = await iterator.next() // the loop saw its cancellation and ended
    }
}
