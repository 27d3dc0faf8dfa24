"""NCRONTAB (six fields, seconds first) next-occurrence arithmetic and validation."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from functions.domain.ncrontab import next_fire, validate

START = datetime(2024, 1, 1, 0, 0, 0)  # a Monday


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        ("*/1 * * * * *", START, datetime(2024, 1, 1, 0, 0, 1)),
        ("* * * * * *", datetime(2024, 1, 1, 0, 0, 0, 500_000), datetime(2024, 1, 1, 0, 0, 1)),
        ("*/15 * * * * *", datetime(2024, 1, 1, 0, 0, 15), datetime(2024, 1, 1, 0, 0, 30)),  # strictly after
        ("5,10 * * * * *", datetime(2024, 1, 1, 0, 0, 7), datetime(2024, 1, 1, 0, 0, 10)),
        ("0 */5 * * * *", START, datetime(2024, 1, 1, 0, 5, 0)),
        ("0 0 * * * *", datetime(2024, 1, 1, 0, 59, 59), datetime(2024, 1, 1, 1, 0, 0)),
        ("0 30 9 * * 1-5", datetime(2024, 1, 5, 10, 0), datetime(2024, 1, 8, 9, 30)),  # Friday -> Monday
        ("30 15 10 * * MON-FRI", START, datetime(2024, 1, 1, 10, 15, 30)),
        ("0 0 9-17/2 * * *", datetime(2024, 5, 1, 10, 0), datetime(2024, 5, 1, 11, 0)),
        ("0 0 12 * * 0", START, datetime(2024, 1, 7, 12, 0)),  # Sunday is 0
        ("0 0 12 * * sun", START, datetime(2024, 1, 7, 12, 0)),
        ("0 0 0 1 JAN *", START, datetime(2025, 1, 1)),
        ("0 0 0 * jan,mar-may *", datetime(2024, 1, 31, 12), datetime(2024, 3, 1)),
        ("0 0 0 29 2 *", START, datetime(2024, 2, 29)),
        ("0 0 0 13 * FRI", START, datetime(2024, 9, 13)),  # day AND day-of-week, as NCrontab does
        ("5/15 * * * * *", START, datetime(2024, 1, 1, 0, 0, 5)),
        ("  0  0  0  *  *  *  ", START, datetime(2024, 1, 2)),
    ],
)
def test_next_fire(expression: str, after: datetime, expected: datetime) -> None:
    validate(expression)
    assert next_fire(expression, after) == expected


def test_time_zone_of_after_is_kept() -> None:
    after = datetime(2024, 1, 1, 23, 59, 59, tzinfo=UTC)
    assert next_fire("0 0 0 * * *", after) == datetime(2024, 1, 2, tzinfo=UTC)


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("* * * * *", "has 5 fields"),
        ("0 0 0 * * * 2024", "has 7 fields"),
        ("", "has 0 fields"),
        ("60 * * * * *", "second 60 is outside 0-59"),
        ("0 60 * * * *", "minute 60 is outside 0-59"),
        ("0 0 24 * * *", "hour 24 is outside 0-23"),
        ("0 0 0 0 * *", "day 0 is outside 1-31"),
        ("0 0 0 32 * *", "day 32 is outside 1-31"),
        ("0 0 0 * 13 *", "month 13 is outside 1-12"),
        ("0 0 0 * * 7", "day-of-week 7 is outside 0-6"),
        ("*/0 * * * * *", "step must be at least 1"),
        ("10-5 * * * * *", "runs backwards"),
        ("0 0 0 L * *", "'L' is not a valid day"),
        ("0 0 0 ? * *", "'?' is not valid"),
        ("0 0 0 * * 1#2", "'1#2' is not valid"),
        ("H * * * * *", "'H' is not a valid second"),
        ("0 0 0 * * January", "'January' is not a valid day-of-week"),
        ("0 0 0 * MON *", "'MON' is not a valid month"),
        ("x * * * * *", "'x' is not a valid second"),
        ("1,,2 * * * * *", "'' is not valid"),
        ("0 0 0 30 2 *", "never fires"),
    ],
)
def test_invalid_expressions_name_the_expression(expression: str, message: str) -> None:
    with pytest.raises(ValueError, match="NCRONTAB expression") as raised:
        validate(expression)
    assert message in str(raised.value)
    assert repr(expression) in str(raised.value)


def test_next_fire_rejects_what_validate_rejects() -> None:
    with pytest.raises(ValueError, match="has 5 fields"):
        next_fire("*/5 * * * *", START)
