"""The SVG plots of the reports (rlaif/publish/plots.py; issue 26 item 10): every axis reads. A learning rate
of 5e-5 used to tick `0 0 0 0 0`, rewards `0.001 0.001 0 0` and `-0`, training steps 1.75."""

from __future__ import annotations

import re

import pytest

from rlaif.publish.plots import bars, histogram, line, scatter


def tick_rows(svg: str) -> tuple[list[str], list[str]]:
    """(y tick labels, x tick labels) of a plot: y ticks are right-aligned, x ticks centred."""
    y = re.findall(r'text-anchor="end" class="tick">([^<]*)<', svg)
    x = re.findall(r'text-anchor="middle" class="tick">([^<]*)<', svg)
    return y, x


STEPS = list(range(1, 9))


@pytest.mark.parametrize(
    "points",
    [
        [(s, 5e-5 * (1 - s / 10)) for s in STEPS],  # a decaying learning rate
        [(s, 0.0012 - 0.0003 * s) for s in STEPS],  # a reward crossing zero by a hair
        [(s, -3e-08 * s) for s in STEPS],  # a tiny loss
        [(s, 0.5 + 0.01 * s) for s in STEPS],
    ],
    ids=["learning-rate", "small-reward", "tiny-loss", "accuracy"],
)
def test_no_axis_of_a_line_repeats_a_label_and_steps_tick_whole(points):
    y, x = tick_rows(line(points, "metric", "step", "value"))
    assert len(set(y)) == len(y) == 6, y
    assert "-0" not in y
    assert x == ["1", "3", "5", "7"], x  # whole training steps, never 1.75


def test_no_axis_of_the_other_plots_repeats_a_label():
    for svg in (
        histogram([0.0001 * i for i in range(50)], "margins", "margin", lo=0.0, hi=0.005, bins=10),
        scatter([(i / 1000, 0.0001 * i) for i in range(20)], "agreement", "x", "y"),
        bars([("a", 0.0002), ("b", 0.0003)], "shares"),
    ):
        y, x = tick_rows(svg)
        assert len(set(y)) == len(y), y
        numeric = [t for t in x if re.fullmatch(r"-?[\d.e-]+", t)]
        assert len(set(numeric)) == len(numeric), x
