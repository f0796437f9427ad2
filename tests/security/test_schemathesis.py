"""schemathesis against /api/openapi.json of a real `brygga serve` process, authenticated with a bearer
token: every operation, all checks; 0 server errors and 0 schema violations (docs/security.md)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.security.serve import serve_env, serving

ROOT = Path(__file__).resolve().parents[2]
MAX_EXAMPLES = os.environ.get("BRYGGA_SCHEMATHESIS_EXAMPLES", "30")
# These two judge *semantic* answers as schema failures: a stale cursor (400), a missing or stale If-Match
# (428/412), a duplicate (409) or a reference to an object that does not exist are correct refusals of
# schema-valid requests. Server errors, undocumented statuses and response-schema violations stay checked.
SEMANTIC_CHECKS = "positive_data_acceptance,negative_data_rejection"


def run(env: dict[str, str], *args: str) -> str:
    command = [sys.executable, "-m", "server", *args]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def failures_of(output: str) -> str:
    """The FAILURES section of a schemathesis report (which check failed, on what, and why): the
    summary at the end names only the check."""
    start = output.find("=== FAILURES ===")
    end = output.find("=== WARNINGS ===", start)
    return output[start:end][:8000] + "\n...\n" if start >= 0 else ""


@pytest.mark.slow
def test_schemathesis_finds_no_server_errors_or_schema_violations(tmp_path):
    env = serve_env(tmp_path / "data")
    run(env, "migrate")
    run(env, "seed-demo")
    roles = ["--role", "auditor", "--role", "directory_admin"]
    run(env, "user", "create", "--login", "fuzzer", "--name", "Fuzz Tester", *roles)
    token = run(env, "token", "create", "--user", "fuzzer", "--name", "schemathesis").splitlines()[-1]
    with (tmp_path / "server.log").open("wb") as log, serving(env, log) as base:
        result = subprocess.run(
            [
                str(Path(sys.executable).with_name("schemathesis")), "run", f"{base}/api/openapi.json",
                "--checks", "all", "--exclude-checks", SEMANTIC_CHECKS, "--header", f"Authorization: Bearer {token}",
                "--max-examples", MAX_EXAMPLES, "--request-timeout", "10", "--no-color",
                "--generation-database", "none",
            ],
            cwd=tmp_path, capture_output=True, text=True, timeout=900,
        )  # fmt: skip
        report = result.stdout[-6000:]
        assert result.returncode == 0, failures_of(result.stdout) + report
        assert "Tested: " in report
    # aiohttp logs the malformed-header probes it answers with 400; what must not appear is our last-resort
    # handler's entry for an exception escaping a handler (a 500).
    server_log = (tmp_path / "server.log").read_text()
    assert '"msg": "unhandled error"' not in server_log, server_log[-4000:]
