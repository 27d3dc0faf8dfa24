"""Names the platforms derive from release ids: one rule for Azure ML job names, locally and on Azure."""

from __future__ import annotations

import re

import pytest

from platforms.common.names import JOB_NAME_PART_LIMIT, job_name_part


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("rel-1234", "rel-1234"),
        ("rel_build_7", "rel_build_7"),
        ("Rel 12/3 (retry)", "Rel-12-3-retry"),  # a run of other characters is one '-'
        ("--rel--1-", "rel--1"),  # leading and trailing '-' go; inner ones stay
        ("ü🚀", "release"),  # nothing left
        ("", "release"),
    ],
)
def test_a_job_name_part_keeps_letters_digits_dashes_and_underscores(text: str, expected: str) -> None:
    assert job_name_part(text) == expected


def test_a_job_name_part_is_cut_at_the_limit() -> None:
    long = "rel-" + "x" * 100
    assert job_name_part(long) == long[:JOB_NAME_PART_LIMIT]
    assert job_name_part(long, limit=10) == "rel-xxxxxx"
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,60}", job_name_part("a.b" * 50))
