"""The production router's turn-taking: smooth weighted round-robin, and which requests are mirrored."""

from __future__ import annotations

import math

import pytest

from platforms.local.production_router import SmoothWeighted, is_mirrored


def picks(weights: list[int], n: int) -> list[int]:
    picker = SmoothWeighted(weights)
    return [picker.pick() for _ in range(n)]


def test_two_targets_never_get_more_than_their_share_rounded_up():
    """Exhaustively: w vs 100 - w, over every prefix of the first 500 picks."""
    for w in range(1, 100):
        sequence = picks([w, 100 - w], 500)
        first = 0
        for n, index in enumerate(sequence, start=1):
            first += index == 0
            assert first <= math.ceil(w * n / 100), (w, n)
            assert n - first <= math.ceil((100 - w) * n / 100), (w, n)


def test_seventy_thirty_is_spread_evenly_and_ties_go_to_the_first_listed():
    # nginx's own example shape: no run of the light target, a tie at pick 5 taken by the first.
    assert picks([70, 30], 10) == [0, 1, 0, 0, 0, 1, 0, 0, 1, 0]
    assert picks([70, 30], 20) == picks([70, 30], 10) * 2  # the cycle repeats exactly every 100/gcd picks
    assert picks([50, 50], 4) == [0, 1, 0, 1]


def test_it_is_deterministic_and_exact_over_a_whole_cycle():
    weights = [50, 30, 20]
    first, second = picks(weights, 300), picks(weights, 300)
    assert first == second
    assert [first.count(i) for i in range(3)] == [150, 90, 60]
    assert picks([100], 5) == [0] * 5


@pytest.mark.parametrize("weights", [[], [0, 100], [-1, 101]])
def test_weights_must_be_positive(weights):
    with pytest.raises(ValueError):
        SmoothWeighted(weights)


def test_a_mirror_share_copies_exactly_its_floor_of_every_prefix():
    for share in range(0, 101):
        copied = 0
        for k in range(1, 301):
            copied += is_mirrored(k, share)
            assert copied == k * share // 100, (share, k)


def test_which_requests_a_share_copies():
    assert [k for k in range(1, 11) if is_mirrored(k, 50)] == [2, 4, 6, 8, 10]
    assert [k for k in range(1, 11) if is_mirrored(k, 30)] == [4, 7, 10]
    assert all(is_mirrored(k, 100) for k in range(1, 50))
    assert not any(is_mirrored(k, 0) for k in range(1, 50))
