"""The coverage chart: an SVG drawn from known counts, checked as XML."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import date, timedelta

import pytest

from monitor.ui.chart import MARKER_DAYS, PALETTE, _nice_step, coverage_svg

NS = {"svg": "http://www.w3.org/2000/svg"}
DAYS = [date(2026, 11, 25) + timedelta(days=i) for i in range(5)]


def _parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)


def _series(root: ET.Element) -> list[ET.Element]:
    return list(root.iterfind(".//svg:g[@class='series']", NS))


def test_counts_appear_as_data_with_one_series_per_topic() -> None:
    svg = coverage_svg(
        DAYS,
        [("Iran", {DAYS[0]: 3, DAYS[2]: 1}), ("Harbour strikes", {DAYS[4]: 7})],
    )
    root = _parse(svg)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    series = _series(root)
    assert [g.get("data-topic") for g in series] == ["Iran", "Harbour strikes"]
    assert [g.get("data-counts") for g in series] == ["3,0,1,0,0", "0,0,0,0,7"]
    points = [
        (p.get("data-day"), p.get("data-count")) for p in series[0].iterfind("svg:g[@class='point']", NS)
    ]
    assert points == [(d.isoformat(), c) for d, c in zip(DAYS, ["3", "0", "1", "0", "0"], strict=True)]
    # Each series is a line in its own colour.
    strokes = [g.find("svg:polyline", NS).get("stroke") for g in series]  # type: ignore[union-attr]
    assert strokes == list(PALETTE[:2])


def test_line_heights_follow_the_counts() -> None:
    root = _parse(coverage_svg(DAYS, [("A", {DAYS[0]: 4, DAYS[1]: 2, DAYS[2]: 0})]))
    line = _series(root)[0].find("svg:polyline", NS)
    assert line is not None
    ys = [float(pair.split(",")[1]) for pair in line.get("points", "").split()]
    xs = [float(pair.split(",")[0]) for pair in line.get("points", "").split()]
    assert xs == sorted(xs) and len(set(xs)) == 5
    # SVG y grows downwards: 4 is highest, 2 half as high above the baseline as 4, 0 on it.
    baseline = ys[2]
    assert ys[0] < ys[1] < baseline
    assert (baseline - ys[0]) == pytest.approx(2 * (baseline - ys[1]), abs=0.2)


def test_topics_appear_in_the_legend_and_titles_are_accessible() -> None:
    root = _parse(
        coverage_svg(DAYS, [("Iran", {}), ("Harbour strikes", {DAYS[1]: 2})], title="Coverage, 5 days")
    )
    assert root.get("role") == "img"
    assert root.findtext("svg:title", namespaces=NS) == "Coverage, 5 days"
    desc = root.findtext("svg:desc", namespaces=NS) or ""
    assert "Iran: 0" in desc and "Harbour strikes: 2" in desc and "2026-11-25 to 2026-11-29" in desc
    legend = root.find(".//svg:g[@class='legend']", NS)
    assert legend is not None
    assert [t.text for t in legend.iterfind("svg:text", NS)] == ["Iran", "Harbour strikes"]


def test_y_axis_ticks_are_whole_numbers_up_to_the_peak() -> None:
    root = _parse(coverage_svg(DAYS, [("A", {DAYS[0]: 37})]))
    labels = [t.text for t in root.iterfind("svg:text[@class='y-label']", NS)]
    assert labels == ["0", "10", "20", "30", "40"]
    assert [_nice_step(n) for n in (0, 3, 5, 6, 11, 37, 240, 999)] == [1, 1, 1, 2, 5, 10, 50, 200]


def test_hostile_topic_names_are_escaped() -> None:
    name = '<script>alert("x")</script> & co'
    svg = coverage_svg(DAYS, [(name, {DAYS[0]: 1})])
    assert "<script>" not in svg
    root = _parse(svg)
    assert _series(root)[0].get("data-topic") == name
    assert name in [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]


def test_empty_inputs_still_draw_valid_svg() -> None:
    no_topics = _parse(coverage_svg(DAYS, []))
    assert _series(no_topics) == []
    assert "No topics yet" in [t.text for t in no_topics.iterfind("svg:text", NS)]
    quiet = _parse(coverage_svg(DAYS, [("A", {})]))
    assert "No matches in these days" in [t.text for t in quiet.iterfind("svg:text", NS)]
    one_day = _parse(coverage_svg(DAYS[:1], [("A", {DAYS[0]: 2})]))
    assert _series(one_day)[0].get("data-counts") == "2"


def test_long_ranges_drop_markers_but_keep_the_line() -> None:
    days = [date(2026, 1, 1) + timedelta(days=i) for i in range(MARKER_DAYS + 10)]
    root = _parse(coverage_svg(days, [("A", {days[5]: 1})]))
    series = _series(root)[0]
    assert series.find("svg:polyline", NS) is not None
    assert series.find("svg:g[@class='point']", NS) is None
    assert series.get("data-counts", "").split(",")[5] == "1"
    date_labels = [t.text for t in root.iterfind("svg:text[@class='x-label']", NS)]
    assert 2 <= len(date_labels) <= 9 and date_labels[-1] == days[-1].strftime("%d %b")
    narrow = _parse(coverage_svg(days, [("A", {})], width=340))
    narrow_labels = [t.text for t in narrow.iterfind("svg:text[@class='x-label']", NS)]
    assert 2 <= len(narrow_labels) <= 5 < len(date_labels)
