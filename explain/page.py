"""The lesson as one self-contained HTML page: inline CSS, JS, SVG and MathML, no network."""
from __future__ import annotations

import json
from functools import lru_cache

import jinja2

from .lesson import Lesson, label
from .mathml import fmt

#: Where the page keeps its numbers, for scripts and tests: <script id="lesson-data">.
DATA_ID = "lesson-data"


@lru_cache(maxsize=1)
def _template() -> jinja2.Template:
    env = jinja2.Environment(loader=jinja2.PackageLoader("backprop.explain", "templates"),
                             autoescape=True, undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True)
    return env.get_template("lesson.html.j2")


def embedded_json(obj) -> str:
    """JSON that is safe inside a <script> element: no '</' can close it early."""
    text = json.dumps(obj, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return text.replace("</", "<\\/").replace("<!--", "<\\!--")


def render(lesson: Lesson) -> str:
    """The whole page for one lesson."""
    data = lesson.data()
    spec = lesson.spec
    row = ", ".join(f"x{j} = {fmt(v)}" for j, v in enumerate(lesson.x, 1))
    if lesson.raw_x is not None:
        row += " (standardised from " + ", ".join(fmt(v) for v in lesson.raw_x) + ")"
    row += "; targets " + ", ".join(fmt(v) for v in lesson.y)
    if lesson.label:
        row += f" ({lesson.label})"
    parameters = [(pid, {**p, "label": label(p["name"])}) for pid, p in data["parameters"].items()]
    return _template().render(
        title=f"One step of backprop: the {'-'.join(map(str, spec.layers))} network",
        subtitle=f"{spec.describe()}. Row: {row}. Learning rate η = {fmt(lesson.lr)}.",
        svg=lesson.diagram(), loss=fmt(float(lesson.result["loss"])), lr=fmt(lesson.lr),
        parameters=parameters, data_json=jinja2.utils.markupsafe.Markup(embedded_json(data)))
