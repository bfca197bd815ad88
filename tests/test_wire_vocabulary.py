"""The wire vocabulary is written once per language and kept equal by this test: the
client's close-code policies, event ops and protocol version (client_js/protocol.js) are
the server's (core/closecodes.py, core/protocol.py)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from bulletin.core import closecodes, protocol
from tests.test_client_js import _node

ROOT = Path(__file__).resolve().parent.parent
PROTOCOL_JS = ROOT / "client_js" / "protocol.js"


def _client_vocabulary() -> dict[str, Any]:
    """What client_js/protocol.js exports, read by Node itself."""
    script = (f"import({json.dumps(PROTOCOL_JS.as_uri())}).then(m => console.log(JSON.stringify("
              "{policies: m.CLOSE_POLICIES, ops: m.KNOWN_OPS, version: m.PROTOCOL_VERSION})))")
    result = subprocess.run([_node(), "--input-type=module", "-e", script], cwd=ROOT,
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    found: dict[str, Any] = json.loads(result.stdout)
    return found


def test_client_close_policies_are_the_servers() -> None:
    """Every close code the server sends has the same reconnect policy in the client; the
    only codes the client knows beyond those are RFC 6455's own (below 3000), which a
    WebSocket library or a proxy may send, never an application code of its own."""
    client = {int(code): policy for code, policy in _client_vocabulary()["policies"].items()}
    server = {code.code: code.reconnect.value for code in closecodes.ALL}
    assert {code: client.get(code) for code in server} == server
    assert all(code < 3000 for code in client.keys() - server.keys()), client


def test_client_event_ops_are_the_servers() -> None:
    """The client listens for exactly the event ops the server writes, in the same order."""
    assert tuple(_client_vocabulary()["ops"]) == protocol.EVENT_OPS


def test_client_protocol_version_is_the_servers() -> None:
    """The client speaks the protocol version the server announces."""
    assert _client_vocabulary()["version"] == protocol.VERSION
