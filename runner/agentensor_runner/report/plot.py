"""The report's score-by-epoch plot: inline SVG, no script and no external resource.

Validation objective of each checkpoint and mean train objective of its epoch as polylines, the
holdout scores of the baseline and of the best config as labelled squares. The y axis spans the
scores plus a margin of 0.05, clipped to ``[0, 1]`` for scores inside it.
"""

from __future__ import annotations

from dataclasses import dataclass

from agentensor_api import RunStatus
from agentensor_store import CheckpointRecord

Point = tuple[int, float | None, float | None]
"""``(epoch, validation objective, mean train objective)``; a missing score is None."""

HoldoutMark = tuple[int, float, str]
"""``(epoch, holdout score, label)``."""

_SERIES = (("#1f77b4", "validation"), ("#ff7f0e", "train"))
_HOLDOUT_COLOR = "#2ca02c"


@dataclass(frozen=True, slots=True)
class _Frame:
    """The plot area: size and padding in pixels, the epochs and the score range shown."""

    width: int
    height: int
    pad: int
    x_min: int
    span_x: int
    lo: float
    span_y: float

    def xy(self, x: float, y: float) -> tuple[float, float]:
        """Pixel coordinates of ``(epoch, score)``."""
        px = self.pad + (x - self.x_min) / self.span_x * (self.width - 2 * self.pad)
        py = self.height - self.pad - (y - self.lo) / self.span_y * (self.height - 2 * self.pad)
        return px, py


def _frame(points: list[Point], holdout: list[HoldoutMark], width: int, height: int) -> _Frame:
    xs = [p[0] for p in points]
    ys = [float(v) for p in points for v in p[1:] if v is not None] + [h[1] for h in holdout]
    lo, hi = (min(ys), max(ys)) if ys else (0.0, 1.0)
    lo, hi = min(lo, 0.0) if lo < 0 else max(0.0, lo - 0.05), min(1.0, hi + 0.05) if hi <= 1 else hi
    return _Frame(width, height, 40, min(xs), max(1, max(xs) - min(xs)), lo, (hi - lo) or 1.0)


def _axes(f: _Frame, epochs: list[int]) -> list[str]:
    """Background, both axes, five score ticks with grid lines, one tick per epoch."""
    w, h, pad = f.width, f.height, f.pad
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" role="img" aria-label="score by epoch">',
        f'<rect x="0" y="0" width="{w}" height="{h}" fill="white"/>',
        f'<line x1="{pad}" y1="{h - pad}" x2="{w - pad}" y2="{h - pad}" stroke="#333"/>',
        f'<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{h - pad}" stroke="#333"/>',
    ]
    for i in range(5):
        v = f.lo + f.span_y * i / 4
        _, y = f.xy(f.x_min, v)
        parts.append(f'<text x="4" y="{y + 4:.1f}" font-size="11">{v:.2f}</text>')
        parts.append(f'<line x1="{pad}" y1="{y:.1f}" x2="{w - pad}" y2="{y:.1f}" stroke="#eee"/>')
    for x in epochs:
        px, _ = f.xy(x, f.lo)
        parts.append(f'<text x="{px - 4:.1f}" y="{h - pad + 16}" font-size="11">{x}</text>')
    parts.append(f'<text x="{w / 2 - 20}" y="{h - 6}" font-size="12">epoch</text>')
    return parts


def _series(f: _Frame, points: list[Point]) -> list[str]:
    """The validation and train polylines, a dot per checkpoint and a legend entry for each drawn."""
    parts: list[str] = []
    for idx, (color, label) in enumerate(_SERIES):
        series = [(p[0], val) for p in points if (val := p[1 + idx]) is not None]
        if not series:
            continue
        coords = " ".join(f"{f.xy(ex, sy)[0]:.1f},{f.xy(ex, sy)[1]:.1f}" for ex, sy in series)
        parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{coords}"/>')
        for ex, sy in series:
            cx, cy = f.xy(ex, sy)
            parts.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="3" fill="{color}"/>')
        legend_y = f.pad + 14 * idx
        parts.append(f'<text x="{f.width - f.pad - 90}" y="{legend_y}" font-size="12" fill="{color}">{label}</text>')
    return parts


def _holdout_marks(f: _Frame, holdout: list[HoldoutMark]) -> list[str]:
    """A labelled square per holdout score (label on the side away from the edge), and a legend entry."""
    parts: list[str] = []
    for i, (ex, sy, label) in enumerate(holdout):
        cx, cy = f.xy(ex, sy)
        parts.append(
            f'<rect x="{cx - 4:.1f}" y="{cy - 4:.1f}" width="8" height="8" fill="{_HOLDOUT_COLOR}" class="holdout"/>'
        )
        anchor, tx = ("end", cx - 6) if cx > f.width / 2 else ("start", cx + 6)
        parts.append(
            f'<text x="{tx:.1f}" y="{cy + 4 + 12 * i:.1f}" font-size="11" fill="{_HOLDOUT_COLOR}" '
            f'text-anchor="{anchor}">{label}</text>'
        )
    if holdout:
        legend_x = f.width - f.pad - 90
        parts.append(f'<text x="{legend_x}" y="{f.pad + 28}" font-size="12" fill="{_HOLDOUT_COLOR}">holdout</text>')
    return parts


def svg_plot(points: list[Point], holdout: list[HoldoutMark], width: int = 640, height: int = 260) -> str:
    """Validation and train objective by epoch as polylines; holdout scores as labelled squares.

    ``width`` and ``height`` are pixels; with no point, a short paragraph instead of a plot.
    """
    if not points:
        return "<p>No checkpoints.</p>"
    f = _frame(points, holdout, width, height)
    parts = [*_axes(f, [p[0] for p in points]), *_series(f, points), *_holdout_marks(f, holdout), "</svg>"]
    return "".join(parts)


def score_plot(status: RunStatus, checkpoints: list[CheckpointRecord]) -> str:
    """The plot of a run: its checkpoints by epoch, the holdout baseline at the first checkpoint
    and the holdout best at the last checkpoint of the best version."""
    ordered = sorted(checkpoints, key=lambda c: c.epoch)
    points: list[Point] = [(c.epoch, c.score, c.train_score) for c in ordered]
    holdout: list[HoldoutMark] = []
    h = status.holdout
    if h is not None and ordered:
        best_epoch = next((c.epoch for c in reversed(ordered) if c.version == status.best_version), ordered[-1].epoch)
        if h.baseline is not None:
            holdout.append((ordered[0].epoch, h.baseline, f"holdout baseline {h.baseline:.3f}"))
        if h.best is not None:
            holdout.append((best_epoch, h.best, f"holdout best {h.best:.3f}"))
    return svg_plot(points, holdout)
