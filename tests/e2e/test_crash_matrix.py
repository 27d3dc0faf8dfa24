"""kill -9 of a real `mlops up` at every step boundary of a release, restarted at once (tests/crash_lab.py).

At every boundary (training, registering, packaging, staging, awaiting approval, promoting, each rollout
step, live): the host really died of SIGKILL there; the host started right after it brought the release
to where it must end (awaiting approval before the approval, live after it) with no timeout having to
pass; no process of the home is left that no record accounts for; no deployment was launched twice; no
release of the home is left in a step; no record names a server that is gone; no staging server is
left for a release past staging. How long each recovery
took is measured by benchmarks/crash_recovery.py, not asserted here.
"""

from __future__ import annotations

import pytest

from tests.crash_lab import BOUNDARIES, CaseResult, run_matrix

pytestmark = pytest.mark.e2e

# A bound, not a timing target: a recovery that waits for a claimed step's 10-minute timeout fails.
RECOVERY_BOUND_S = 150


@pytest.fixture(scope="module")
def matrix(tmp_path_factory: pytest.TempPathFactory) -> dict[str, CaseResult]:
    results = run_matrix(tmp_path_factory.mktemp("crash-home"), BOUNDARIES, RECOVERY_BOUND_S, say=lambda _: None)
    return {result.boundary.name: result for result in results}


@pytest.mark.parametrize("boundary", BOUNDARIES, ids=[b.crash_after for b in BOUNDARIES])
def test_a_host_killed_at_the_boundary_recovers_the_release_with_nothing_left_over(matrix, boundary):
    result = matrix[boundary.name]
    assert result.crashed, f"the host did not die at {boundary.crash_after}"
    assert result.state == boundary.definite, (result.state, result.error)
    assert result.restart_to_definite_s is not None
    assert result.orphans == []
    assert result.duplicates == {}
    assert result.not_at_rest == []
    assert result.stale_records == []
    assert result.unneeded_staging == []
