"""A real Prometheus server on loopback scrapes relay-milter; the decision
counter is read back through its query API. The shipped alert rules and
scrape config pass promtool."""
import json
import shutil
import subprocess
import urllib.parse
import urllib.request

import pytest

from mailharness.ports import free_port, wait_for_port, wait_until
from mailharness.relaymilter import REPO, config_text
from mailharness.swaks import swaks

pytestmark = pytest.mark.skipif(shutil.which("prometheus") is None, reason="Debian's prometheus not installed")
MONITORING = REPO / "Config" / "monitoring"


def test_shipped_rules_and_config_pass_promtool():
    for args in (["check", "rules", str(MONITORING / "relay-milter.rules.yml")],
                 ["check", "config", str(MONITORING / "prometheus.yml")]):
        result = subprocess.run(["promtool", *args], capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr


def test_prometheus_scrapes_the_decision_counter(start_milter, start_postfix, sink, workdir):
    milter = start_milter(config_text())
    postfix = start_postfix(milter=milter.postfix_spec)
    for i in range(3):
        assert "<** 550 5.7.1" in swaks(postfix.port, to=f"victim{i}@elsewhere.example", source="127.0.0.2")[1]

    port = free_port()
    config = workdir / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n"
        "scrape_configs:\n  - job_name: relay-milter\n    static_configs:\n"
        f"      - targets: ['127.0.0.1:{milter.metrics_port}']\n")
    server = subprocess.Popen(["prometheus", f"--config.file={config}", f"--storage.tsdb.path={workdir}/tsdb",
                               f"--web.listen-address=127.0.0.1:{port}"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert wait_for_port(port, timeout=30)
        query = urllib.parse.quote('sum(relay_milter_decisions_total{stage="rcpt",action="reject",reason="relay.denied"})')

        def value():
            try:  # Prometheus answers 503 until its storage is ready
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/query?query={query}", timeout=5) as response:
                    result = json.load(response)["data"]["result"]
            except OSError:
                return None
            return float(result[0]["value"][1]) if result else None

        assert wait_until(lambda: value() == 3.0, timeout=40), value()
    finally:
        server.terminate()
        server.wait(timeout=20)


def test_every_dashboard_query_is_valid_promql(workdir):
    """Each panel's expression, wrapped as a recording rule, must pass promtool."""
    dashboard = json.loads((MONITORING / "grafana-relay-milter.json").read_text())
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    assert len(exprs) == len(dashboard["panels"]) >= 8
    rules = workdir / "dashboard.rules.yml"
    rules.write_text("groups:\n  - name: dashboard\n    rules:\n" + "".join(
        f"      - record: relay_milter:dashboard_{i}\n        expr: {json.dumps(expr)}\n" for i, expr in enumerate(exprs)))
    result = subprocess.run(["promtool", "check", "rules", str(rules)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    for expr in exprs:
        assert "relay_milter_" in expr


def test_the_stale_exchange_alert_fires_for_a_stuck_instance_only(workdir):
    """promtool's rule tests: instance a's last exchange stays at minute 1 (a
    loop stuck as one once was in CI, with shared_store_up still 1); b's
    advances every minute. At minute 20 the alert holds for a alone."""
    tests = workdir / "stale.test.yml"
    tests.write_text(f"""rule_files:
  - {MONITORING / "relay-milter.rules.yml"}
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'relay_milter_shared_store_last_exchange_timestamp_seconds{{instance="a"}}'
        values: '60x30'
      - series: 'relay_milter_shared_store_last_exchange_timestamp_seconds{{instance="b"}}'
        values: '0+60x30'
      - series: 'relay_milter_shared_store_up{{instance="a"}}'
        values: '1x30'
    alert_rule_test:
      - eval_time: 10m
        alertname: RelayMilterSharedStoreStale
        exp_alerts: []
      - eval_time: 20m
        alertname: RelayMilterSharedStoreStale
        exp_alerts:
          - exp_labels:
              severity: warning
              instance: a
            exp_annotations:
              summary: "relay-milter on a has not exchanged verdicts with the fleet's database for over 10 minutes"
              description: "Enforcement goes on from memory and new verdicts wait in the local SQLite file, but the fleet does not hear of them and hosts may be tested twice. The log says `shared verdict database unreachable` if the server is away."
""")
    result = subprocess.run(["promtool", "test", "rules", str(tests)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
