"""Inline SVG charts for the dashboard, written as text: every value can carry its own hover ``<title>``, the
page scales them to its width, and nothing runs or is fetched when it is viewed."""
from __future__ import annotations

import html
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from matplotlib.ticker import MaxNLocator

PALETTE = ("#3b6fb6", "#e07b39", "#3a9a5b", "#c44e52", "#8172b3", "#937860", "#d17fb8", "#7f7f7f")
XY = tuple[float, float]


def esc(text: object) -> str:
    return html.escape(str(text))


def nice_range(values: Sequence[float], floor: float | None = None) -> tuple[list[float], tuple[float, float]]:
    """Round tick values around the finite ``values`` (and ``floor`` when given), and the range they span."""
    finite = [v for v in values if math.isfinite(v)] + ([floor] if floor is not None else [])
    low, high = min(finite), max(finite)
    if high - low < 1e-12 * max(abs(high), 1.0):
        low, high = low - abs(low) * 0.05 - 1e-9, high + abs(high) * 0.05 + 1e-9
    ticks = [float(t) for t in MaxNLocator(nbins=5).tick_values(low, high)]
    return ticks, (ticks[0], ticks[-1])


@dataclass(frozen=True)
class Dot:
    x: float
    y: float
    title: str               # shown on hover
    data: str = ""           # extra attributes of the dot, already escaped (data-run="...")


@dataclass
class Frame:
    """One chart: data ranges mapped onto a ``width`` x ``height`` view box (x on a log2 scale with
    ``log2_x``), and the SVG elements drawn so far."""

    width: int
    height: int
    x_range: tuple[float, float]
    y_range: tuple[float, float]
    log2_x: bool = False
    margin: tuple[int, int, int, int] = (14, 16, 40, 54)     # top, right, bottom, left
    clip_id: str = ""        # set: lines drawn with ``clipped`` stop at the plot area's edges
    parts: list[str] = field(default_factory=list)

    def x(self, value: float) -> float:
        scale: Callable[[float], float] = math.log2 if self.log2_x else float
        low, high = (scale(v) for v in self.x_range)
        left, right = self.margin[3], self.width - self.margin[1]
        return left + (right - left) * (scale(value) - low) / ((high - low) or 1.0)

    def y(self, value: float) -> float:
        low, high = self.y_range
        top, bottom = self.margin[0], self.height - self.margin[2]
        return bottom - (bottom - top) * (value - low) / ((high - low) or 1.0)

    def _xy(self, points: Sequence[XY]) -> str:
        return " ".join(f"{self.x(px):.1f},{self.y(py):.1f}" for px, py in points)

    def y_grid(self, ticks: Sequence[float], fmt: Callable[[float], str]) -> None:
        left, right = self.margin[3], self.width - self.margin[1]
        for tick in ticks:
            at = self.y(tick)
            self.parts.append(f'<line class="grid" x1="{left}" x2="{right}" y1="{at:.1f}" y2="{at:.1f}"/>'
                              f'<text class="tick" x="{left - 6}" y="{at + 4:.1f}" text-anchor="end">'
                              f"{esc(fmt(tick))}</text>")

    def x_ticks(self, ticks: Sequence[tuple[float, str]]) -> None:
        base = self.height - self.margin[2]
        for value, label in ticks:
            self.parts.append(f'<text class="tick" x="{self.x(value):.1f}" y="{base + 16}" text-anchor="middle">'
                              f"{esc(label)}</text>")

    def axis_labels(self, x_label: str, y_label: str) -> None:
        middle = (self.margin[0] + self.height - self.margin[2]) / 2
        self.parts.append(f'<text class="axis" x="{(self.margin[3] + self.width - self.margin[1]) / 2:.1f}" '
                          f'y="{self.height - 6}" text-anchor="middle">{esc(x_label)}</text>'
                          f'<text class="axis" transform="translate(14 {middle:.1f}) rotate(-90)" '
                          f'text-anchor="middle">{esc(y_label)}</text>')

    def line(self, points: Sequence[XY], color: str, css: str = "series", dash: str = "", data: str = "",
             clipped: bool = False) -> None:
        extra = (f' stroke-dasharray="{dash}"' if dash else "") + (
            f' clip-path="url(#{self.clip_id})"' if clipped and self.clip_id else "")
        self.parts.append(f'<polyline class="{css}" {data} points="{self._xy(points)}" stroke="{color}"{extra}/>')

    def band(self, upper: Sequence[XY], lower: Sequence[XY], color: str) -> None:
        """The interval around a line: upper bounds left to right, then lower bounds back."""
        self.parts.append(f'<polygon class="band" points="{self._xy([*upper, *reversed(lower)])}" fill="{color}"/>')

    def error_bar(self, x: float, low: float, high: float, color: str) -> None:
        self.parts.append(f'<line class="errorbar" x1="{self.x(x):.1f}" x2="{self.x(x):.1f}" y1="{self.y(low):.1f}" '
                          f'y2="{self.y(high):.1f}" stroke="{color}"/>')

    def dots(self, dots: Sequence[Dot], color: str, css: str = "dot", radius: float = 4.0) -> None:
        for dot in dots:
            self.parts.append(f'<circle class="{css}" {dot.data} cx="{self.x(dot.x):.1f}" cy="{self.y(dot.y):.1f}" '
                              f'r="{radius}" fill="{color}" stroke="{color}"><title>{esc(dot.title)}</title></circle>')

    def vline(self, x: float, css: str, title: str, data: str = "", label: str = "") -> None:
        """A vertical mark across the plot area at data ``x``, with its hover text and a label on top."""
        at, top, bottom = self.x(x), self.margin[0], self.height - self.margin[2]
        text = f'<text class="mark" x="{at + 3:.1f}" y="{top + 10}">{esc(label)}</text>' if label else ""
        self.parts.append(f'<g class="{css}" {data}><line x1="{at:.1f}" x2="{at:.1f}" y1="{top}" y2="{bottom}"/>'
                          f"{text}<title>{esc(title)}</title></g>")

    def span(self, low: float, high: float, css: str) -> None:
        """A shaded column between data ``low`` and ``high`` behind the lines."""
        left, right = self.x(low), self.x(high)
        self.parts.append(f'<rect class="{css}" x="{left:.1f}" y="{self.margin[0]}" width="{right - left:.1f}" '
                          f'height="{self.height - self.margin[0] - self.margin[2]}"/>')

    def svg(self, label: str, css: str) -> str:
        """The chart as an ``<svg>`` that scales to its container."""
        inner = "".join(self.parts)
        if self.clip_id:
            top, left = self.margin[0], self.margin[3]
            inner = (f'<defs><clipPath id="{self.clip_id}"><rect x="{left}" y="{top}" '
                     f'width="{self.width - left - self.margin[1]}" height="{self.height - top - self.margin[2]}"/>'
                     f"</clipPath></defs>{inner}")
        return (f'<svg xmlns="http://www.w3.org/2000/svg" class="{css}" viewBox="0 0 {self.width} {self.height}" '
                f'role="img" aria-label="{esc(label)}">{inner}</svg>')


def legend(entries: Sequence[tuple[str, str, str]]) -> str:
    """An HTML key under a chart: (label, colour, CSS border style of the swatch: solid, dashed, dotted, ring)."""
    return '<ul class="legend">' + "".join(
        f'<li><span class="swatch {style}" style="--c:{color}"></span>{esc(label)}</li>'
        for label, color, style in entries) + "</ul>"
