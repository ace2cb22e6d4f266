"""A board budget for ``hwprune train --fit BOARD[:lut=FRACTION,ff=...,dsp=...,bram18=...,
latency_ns=...]``: each resource's limit is the board's usable amount times its fraction
(1 when not stated: the design must fit the board whatever is stated), and latency an
absolute limit in ns at the board's clock when stated."""

from __future__ import annotations

from dataclasses import dataclass

from hwprune.errors import HwpruneError

FRACTION_KEYS = ("lut", "ff", "dsp", "bram18")
SPEC_HELP = "BOARD[:lut=FRACTION,ff=FRACTION,dsp=FRACTION,bram18=FRACTION,latency_ns=NS]"


@dataclass(frozen=True)
class Budget:
    """``limits``: resource -> the most the design may use (lut..bram18 counts, latency_ns);
    ``fractions``: the fractions as stated; ``spec``: the text as the user wrote it."""

    spec: str
    board: str
    clock_mhz: float
    available: dict[str, int]
    fractions: dict[str, float]
    limits: dict[str, float]

    def measure(self, entry: dict) -> dict[str, float]:
        """An estimate entry (estimate.json's, for this board) as the budget's figures."""
        t = entry["totals"]
        return {
            **{r: float(t[r]) for r in FRACTION_KEYS},
            "latency_ns": t["latency_cycles"] * 1000.0 / entry["clock_mhz"],
        }

    def overflow(self, figures: dict[str, float]) -> dict[str, float]:
        """The budgeted figures above their limit, with the amount over."""
        return {r: figures[r] - lim for r, lim in self.limits.items() if figures[r] > lim}

    def describe(self, resource: str) -> str:
        """How a limit was made: "10,400 (pynq-z2's 53,200 LUT x 0.2)"."""
        lim = self.limits[resource]
        if resource == "latency_ns":
            return f"{lim:,.1f} ns"
        frac = self.fractions.get(resource, 1.0)
        return (
            f"{lim:,.0f} ({self.board}'s {self.available[resource]:,} {resource.upper()} "
            f"x {frac:g})"
        )

    def overflow_text(self, figures: dict[str, float]) -> str:
        """Every overflowing resource as "lut 25,300 > 10,640 (pynq-z2's ...) by 14,660
        (138 %)", joined with "; "."""
        parts = []
        for r, over in self.overflow(figures).items():
            lim = self.limits[r]
            share = f", {100 * over / lim:,.0f} %" if lim else ""
            unit = " ns" if r == "latency_ns" else ""
            parts.append(
                f"{r} {figures[r]:,.0f}{unit} > budget {self.describe(r)} by {over:,.0f}{unit}"
                f"{share}"
            )
        return "; ".join(parts)


def parse_budget(spec: str) -> Budget:
    """``--fit`` text -> Budget; one-line HwpruneError naming the bad part and the form."""
    from hwprune.boards import get_board

    name, _, rest = spec.partition(":")
    if not name:
        raise HwpruneError(f"--fit {spec!r}: no board named; use {SPEC_HELP}")
    try:
        board = get_board(name.strip())
    except HwpruneError as e:
        raise HwpruneError(f"--fit {spec!r}: {e}") from None
    fractions: dict[str, float] = {}
    latency = None
    for part in filter(None, (x.strip() for x in rest.split(","))):
        key, eq, value = part.partition("=")
        key = key.strip()
        try:
            v = float(value) if eq else None
        except ValueError:
            v = None
        if key not in (*FRACTION_KEYS, "latency_ns"):
            raise HwpruneError(
                f"--fit {spec!r}: unknown resource {key!r}; use {SPEC_HELP} "
                f"(resources: {', '.join(FRACTION_KEYS)}, latency_ns)"
            )
        if v is None:
            raise HwpruneError(f"--fit {spec!r}: {part!r} needs a number, e.g. {key}=0.5")
        if key == "latency_ns":
            if not v > 0:
                raise HwpruneError(f"--fit {spec!r}: latency_ns={value} must be above 0 (ns)")
            latency = v
        elif not 0 < v <= 1:
            raise HwpruneError(
                f"--fit {spec!r}: {key}={value} must be a fraction of the board in (0, 1]"
            )
        else:
            fractions[key] = v
    avail = board.available
    limits: dict[str, float] = {r: avail[r] * fractions.get(r, 1.0) for r in FRACTION_KEYS}
    if latency is not None:
        limits["latency_ns"] = latency
    return Budget(spec, board.name, board.clock_mhz, avail, fractions, limits)
