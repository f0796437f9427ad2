"""Acceptance 1: >= 200 clients send with resends while `brygga serve` is SIGKILLed 10 times."""

from __future__ import annotations

import pytest

from bench.chaos import ChaosConfig, run_chaos


@pytest.mark.slow
@pytest.mark.timeout(900)
async def test_zero_loss_under_repeated_sigkill(tmp_path):
    config = ChaosConfig(clients=200, kills=10, messages=4)
    report = await run_chaos(tmp_path / "chaos", config)
    print("\n".join(report.lines()))
    assert report.kills == 10
    assert report.acked == 200 * 4 and report.stored == report.acked
    assert report.acked_not_stored == 0 and report.stored_not_acked == 0 and report.id_mismatch == 0
    assert report.missing_deliveries == 0 and report.duplicate_live_deliveries == 0
    assert report.resend_checks > 80 and report.resend_mismatch == 0
    assert report.deliveries == report.stored * 8  # 2 units x 4 members see every message of their conversation
