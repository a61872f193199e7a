"""What a release says: one progress line per step per service on stderr as it happens, then a
summary table (or, with --json, one JSON document a pipeline reads) on stdout."""

from __future__ import annotations

import dataclasses
import json
import sys
import time

RELEASED = "released"
NO_OP = "no-op"
VALIDATED = "validated"
FAILED = "failed"
ROLLED_BACK = "rolled back"


@dataclasses.dataclass
class Step:
    name: str
    seconds: float
    detail: str


@dataclasses.dataclass
class Outcome:
    """One service's release (or rollback), built up step by step."""

    service: str  # the kit's name, as the environment files key it
    name: str  # the Cloud Run name in this environment
    project: str
    region: str
    result: str = FAILED
    revision: str = ""
    traffic: dict[str, int] = dataclasses.field(default_factory=dict)
    error: str | None = None
    steps: list[Step] = dataclasses.field(default_factory=list)
    _started: float = dataclasses.field(default_factory=time.monotonic, repr=False)
    _last: float = dataclasses.field(default_factory=time.monotonic, repr=False)

    @property
    def label(self) -> str:
        return self.service if self.name == self.service else f"{self.service} ({self.name})"

    def step(self, name: str, detail: str) -> None:
        """Records a step done, with the time since the previous one, and says it."""
        now = time.monotonic()
        self.steps.append(Step(name, round(now - self._last, 3), detail))
        self._last = now
        progress(f"{self.label}: {name}: {detail} ({now - self._started:.1f} s)")

    def resume(self) -> None:
        """The next step's time starts now (services are released one after the other)."""
        self._last = time.monotonic()

    def seconds(self) -> float:
        return round(sum(step.seconds for step in self.steps), 3)

    def as_json(self) -> dict:
        fields = dataclasses.asdict(self)
        fields = {k: v for k, v in fields.items() if not k.startswith("_")}
        fields["seconds"] = self.seconds()
        return fields


def progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def traffic_text(shares: dict[str, int]) -> str:
    return " ".join(f"{name}={percent}%" for name, percent in sorted(shares.items())) or "-"


def table(outcomes: list[Outcome]) -> str:
    """The summary: a row per service, columns aligned."""
    rows = [("SERVICE", "RESULT", "REVISION", "TRAFFIC", "SECONDS", "DETAIL")]
    for o in outcomes:
        detail = o.error or (o.steps[-1].detail if o.steps else "")
        rows.append(
            (
                o.label,
                o.result,
                o.revision or "-",
                traffic_text(o.traffic),
                f"{o.seconds():.1f}",
                detail,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return (
        "\n".join(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False))
            + "  "
            + row[-1]
            for row in rows
        ).replace("  \n", "\n")
        + "\n"
    )


def document(environment: str, outcomes: list[Outcome], ok: bool) -> str:
    return (
        json.dumps(
            {"environment": environment, "ok": ok, "services": [o.as_json() for o in outcomes]},
            indent=2,
        )
        + "\n"
    )
