"""The cron schedule: a Quartz or Unix cron expression (see `cronparse`) as a Schedule."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from usersync.schedule.base import PatternSchedule, WallPattern
from usersync.schedule.cronparse import CronSpec, parse_cron
from usersync.schedule.describe import describe_cron


@dataclass(frozen=True)
class CronSchedule(PatternSchedule):
    spec: CronSpec
    timezone: str | None = None

    @classmethod
    def from_expression(cls, expression: str, timezone: str | None = None) -> CronSchedule:
        return cls(parse_cron(expression), timezone)

    @property
    def expression(self) -> str:
        """The expression, whitespace-normalised and upper-cased."""
        return self.spec.text

    @property
    def pattern(self) -> WallPattern:
        return self.spec.pattern

    def describe(self) -> str:
        return describe_cron(self.spec)

    def to_dict(self) -> dict[str, Any]:
        return self._with_zone({"type": "cron", "expression": self.expression})
