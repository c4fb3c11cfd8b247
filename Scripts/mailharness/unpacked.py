"""Where Scripts/install-probe-targets unpacks the MTAs that conflict with
Postfix as packages (Exim, OpenSMTPD): one directory for all of them, the
same default as that script's."""
import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ROOT = Path(os.environ.get("RELAY_MILTER_TARGETS_ROOT", REPO / ".build-targets" / "root"))
