"""The rows a case reports and how the suite's results read as JSON and as a Markdown table."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from .device import Budget

MIB = 2**20


@dataclass
class Row:
    """One figure side by side: ours, the reference (None where none exists), in ``unit``; ``note`` says how."""

    measure: str
    ours: float | None
    reference: float | None = None
    unit: str = "s"
    note: str = ""
    skipped: str | None = None  # why the figure was not measured

    @property
    def ratio(self) -> float | None:
        if self.ours is None or not self.reference:
            return None
        return self.ours / self.reference

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ratio": self.ratio}


@dataclass
class CaseContext:
    """What a case runs with and where it puts its figures."""

    device: str
    dtype: torch.dtype
    quick: bool
    budget: Budget
    repeats: int
    log: Callable[[str], None] = print
    rows: list[Row] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    def row(self, measure: str, ours: float | None, reference: float | None = None, unit: str = "s", note: str = ""):
        row = Row(measure, ours, reference, unit, note)
        self.rows.append(row)
        ratio = f" ({row.ratio:.2f}x)" if row.ratio is not None else ""
        reference_text = f", reference {_value(reference, unit)}" if reference is not None else ""
        self.log(f"  {measure}: ours {_value(ours, unit)}{reference_text}{ratio}")
        return row

    def skip(self, measure: str, reason: str) -> None:
        self.rows.append(Row(measure, None, skipped=reason))
        self.log(f"  {measure}: skipped - {reason}")

    def fits(self, measure: str, estimate_s: float) -> bool:
        """Whether ``estimate_s`` more seconds fit the case's budget; if not, the figure is recorded as skipped."""
        if self.budget.allows(estimate_s):
            return True
        self.skip(
            measure, f"needs about {estimate_s:.0f} s, {max(self.budget.left(), 0):.0f} s of the case budget left"
        )
        return False


def _value(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "MiB":
        return f"{value:,.0f} MiB" if value >= 100 else f"{value:.2f} MiB"
    if unit == "s":
        return f"{value:.3f} s" if value < 10 else f"{value:.1f} s"
    return f"{value:.3g} {unit}"


def markdown(results: dict[str, Any]) -> str:
    """The results as a Markdown document: a header naming the machine, then one table per case."""
    env = results["environment"]
    lines = [
        f"# GPU suite results, {results['date']}{' (--quick: tiny sizes, figures prove the code path only)' if results['quick'] else ''}",
        "",
        f"Device: {env['device_name']} ({env['device']}), {env['dtype']}; torch {env['torch']}, diffusers "
        f"{env['diffusers']}, transformers {env['transformers']}; suite wall time {results['wall_s']:.0f} s of a "
        f"{results['budget_s']:.0f} s budget. Random weights (no checkpoint): speed and memory only.",
        "",
    ]
    for case in results["cases"]:
        lines.append(f"## {case['title']}")
        lines.append("")
        status = case["status"]
        if status != "ok":
            lines.append(f"**{status}**: {case['message']}")
            lines.append("")
        if case["rows"]:
            lines.append("| measure | ours | reference | ours / reference | how |")
            lines.append("|---|---:|---:|---:|---|")
            for row in case["rows"]:
                if row["skipped"]:
                    lines.append(f"| {row['measure']} | - | - | - | skipped: {row['skipped']} |")
                    continue
                ratio = f"{row['ratio']:.2f}x" if row["ratio"] is not None else "-"
                ours, reference = _value(row["ours"], row["unit"]), _value(row["reference"], row["unit"])
                lines.append(f"| {row['measure']} | {ours} | {reference} | {ratio} | {row['note']} |")
            lines.append("")
        for note in case.get("notes", []):
            lines.append(f"- {note}")
        if case.get("notes"):
            lines.append("")
    return "\n".join(lines)
