"""The audit report as Markdown, HTML, JSON and PNG figures, and the terminal summary.

The report is built once as a list of blocks (heading, paragraph, table, figure) and rendered twice, so the
Markdown and the HTML say the same thing.
"""

from __future__ import annotations

import base64
import html
import json
import math
import os
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ._diagnose import stable_norm
from ._verdict import rtol_text

__all__ = ["write_report", "summary_table", "terminal_summary", "format_number", "markdown_text", "wrap_words",
           "shorten_words", "VERDICT_LABELS"]

# Text that comes from the user (model, parameter, state and output names, the loss description, error
# messages, anything derived from them) is marked when it enters the document, between these two private-use
# characters, and each renderer escapes marked text completely for its format: no Markdown or HTML in a model
# name is ever interpreted, and the report's own markup (**bold**, `code`) is only ever the report's.
_OPEN, _CLOSE = "\ue000", "\ue001"
# Markdown characters that can start markup anywhere in a line (emphasis, code, links, images, tables,
# strikethrough, math, autolinks and raw HTML, entities, closing heading sequences) - escaped with a backslash
# or as an HTML entity; user text never starts a line (line breaks become spaces), so list and heading
# markers at a line start cannot arise.
_MARKDOWN_PUNCTUATION = set("\\`*_{}[]()#!|~$^")
_LINE_BREAKS = {"\n", "\r", "\v", "\f", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"}


def _plain(text: object) -> str:
    """User text on one line, without control characters (which could also drive a terminal) or markers."""
    out = []
    for ch in str(text):
        if ch in _LINE_BREAKS or ch == "\t":
            out.append(" ")
        elif ch in (_OPEN, _CLOSE) or ord(ch) < 32 or ord(ch) == 127 or 0x80 <= ord(ch) < 0xA0:
            out.append("\ufffd")
        else:
            out.append(ch)
    return "".join(out)


def _u(text: object) -> str:
    """Mark user-derived text (see above)."""
    return _OPEN + _plain(text) + _CLOSE


def markdown_text(text: object) -> str:
    """``text`` as Markdown that renders as exactly that text: one line, every character that could start
    Markdown markup backslash-escaped, ``&``, ``<`` and ``>`` as HTML entities (no raw HTML, no entities)."""
    out = []
    for ch in _plain(text):
        if ch == "&":
            out.append("&amp;")
        elif ch == "<":
            out.append("&lt;")
        elif ch == ">":
            out.append("&gt;")
        elif ch in _MARKDOWN_PUNCTUATION:
            out.append("\\" + ch)
        else:
            out.append(ch)
    return "".join(out)


def _segments(text: str) -> list[tuple[bool, str]]:
    """``text`` as (is user text, piece) pairs."""
    pieces: list[tuple[bool, str]] = []
    rest = text
    while rest:
        start = rest.find(_OPEN)
        if start < 0:
            pieces.append((False, rest))
            break
        end = rest.find(_CLOSE, start)
        end = len(rest) if end < 0 else end
        if start:
            pieces.append((False, rest[:start]))
        pieces.append((True, rest[start + 1:end]))
        rest = rest[end + 1:]
    return pieces


def _md(text: str, table_cell: bool = False) -> str:
    """Render document text as Markdown: the report's own text as is (``|`` escaped in table cells), user text
    through :func:`markdown_text`."""
    out = []
    for user, piece in _segments(text):
        if user:
            out.append(markdown_text(piece))
        else:
            out.append(piece.replace("|", "\\|") if table_cell else piece)
    return "".join(out)


def _bare(text: str) -> str:
    """Document text with the user-text marks removed (for plain contexts: HTML attributes, CSS decisions)."""
    return text.replace(_OPEN, "").replace(_CLOSE, "")


def format_number(value: Any, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, str):
        return value
    value = float(value)
    if math.isnan(value):
        return "–"
    if math.isinf(value):
        return "exact" if value > 0 else "-inf"
    if value == 0:
        return "0"
    return f"{value:.{digits}g}"


def _digits_text(value: float | None) -> str:
    if value is None:
        return "–"
    return "exact" if math.isinf(value) else f"{value:.1f}"


def _error_text(row: dict[str, Any]) -> str:
    if row["relative_error"] is not None:
        return format_number(row["relative_error"], 2)
    if row["absolute_error"] is not None:
        return f"|g| {format_number(row['absolute_error'], 3)}"
    return "–"


#: Verdict category -> its name in the reports, in the order of :data:`symsens.audit._verdict.SEVERITY`.
VERDICT_LABELS: dict[str, str] = {
    "failed": "failed",
    "backsolve-instability": "biased by the unstable backward solve",
    "loss-floor": "biased by the loss floor",
    "step-size-control": "biased by the step-size controller",
    "stability-boundary": "amplified at the stability boundary",
    "stiffness": "attenuated by stiffness",
    "state-error": "biased by the state error",
    "inaccurate": "inaccurate (truncation)",
    "uninformative": "uninformative (reproduce or nearly reproduce their own targets)",
    "zero-to-rounding": "zero to rounding (the true gradient is 0 to rounding too)",
    "accurate": "accurate",
}


def wrap_words(text: str, width: int, indent: str = "", first: str = "") -> list[str]:
    """``text`` wrapped at word boundaries (never inside a word or a hyphenated name) to ``width`` columns."""
    return textwrap.wrap(text, width=max(width, len(first) + 10, len(indent) + 10), initial_indent=first,
                         subsequent_indent=indent, break_long_words=False, break_on_hyphens=False) or [first.rstrip()]


def shorten_words(text: str, width: int) -> str:
    """``text`` on one line of at most ``width`` columns, cut at a word boundary with an ellipsis when too long."""
    text = " ".join(text.split())
    if len(text) <= width:
        return text
    cut = text[: max(1, width - 1)]
    space = cut.rfind(" ")
    if space > 0:
        cut = cut[:space]
    return cut.rstrip(" ,;:") + "…"


def _ordered_rows(rows: Sequence[dict[str, Any]]) -> list[tuple[str, list[dict[str, Any]]]]:
    """Rows grouped by verdict category, worst category first; in a group, the least accurate first."""
    from ._verdict import SEVERITY

    groups = []
    categories = list(SEVERITY) + sorted({r["category"] for r in rows} - set(SEVERITY))
    for category in categories:
        members = [r for r in rows if r["category"] == category]
        if members:
            members.sort(key=lambda r: (-1.0 if r["digits"] is None else float(r["digits"]),
                                        -(r["absolute_error"] if r["absolute_error"] is not None else math.inf)))
            groups.append((category, members))
    return groups


def _row_error(row: dict[str, Any]) -> str:
    if row["relative_error"] is not None:
        return f"relative error {format_number(row['relative_error'], 2)}"
    if row["absolute_error"] is not None:
        return f"|g| {format_number(row['absolute_error'])} where the true gradient is 0"
    return "no gradient"


def _header_lines(report, width: int = 110) -> list[str]:  # type: ignore[no-untyped-def]
    return [
        f"symsens audit: {_plain(report.model_name)}",
        *wrap_words(f"loss: {_plain(report.loss_description)}", width, indent="  "),
        *(wrap_words(f"gradient: {_plain(report.parameter_map)}", width, indent="  ")
          if getattr(report, "parameter_map", None) else []),
        f"reference gradient |g*| = {format_number(stable_norm(report.reference_gradient))} "
        f"({'exact' if report.reference_exact else ('verified' if report.reference_verified else 'NOT fully verified')}), "
        f"true loss {format_number(report.loss_at_nominal)}",
    ]


def summary_table(report, width: int = 160, heading: bool = True) -> str:  # type: ignore[no-untyped-def]
    """One line per result (method, scheme, rtol, |gradient|, error, digits, verdict), grouped by verdict with
    the worst group first; a long verdict continues on the next lines, wrapped at word boundaries.  ``heading``:
    start with the model, the loss and the reference (off when the terminal summary has already said them)."""
    header = f"{'method':<44} {'scheme':<12} {'rtol':>6} {'|gradient|':>11} {'error':>12} {'digits':>6}  verdict"
    column = header.index("verdict")
    lines = [*_header_lines(report, width), ""] if heading else []
    lines += [header, "-" * len(header)]
    for category, rows in _ordered_rows(report.results):
        lines.append(f"[{VERDICT_LABELS.get(category, category)}: {len(rows)}]")
        for row in rows:
            norm = None if row["gradient"] is None else float(stable_norm(row["gradient"]))
            lead = (f"{_plain(row['method']):<44} {_plain(row['scheme']):<12} {_rtol_cell(row['rtol']):>6} "
                    f"{format_number(norm):>11} {_error_text(row):>12} {_digits_text(row['digits']):>6}  ")
            lines.extend(wrap_words(_plain(row["verdict"]), width, indent=" " * column, first=lead))
    lines.append("")
    lines.extend(wrap_words(f"recommendation ({report.target_digits:g} digits): {_plain(report.recommendation['text'])}",
                            width, indent="  "))
    lines.append(_time_line(report))
    return "\n".join(lines)


def _run_text(row: dict[str, Any]) -> str:
    """``discrete with tsit5 at rtol 0.001``, or an external gradient's label."""
    if row.get("external"):
        return _plain(_external_label(row))
    return f"{_plain(row['method'])} with {_plain(row['scheme'])} at rtol {rtol_text(row['rtol'])}"


def _rtol_cell(rtol: float | None) -> str:
    """A table's rtol cell: ``1e-06``; ``–`` for an external gradient given without its rtol."""
    return "–" if rtol is None else f"{rtol:.0e}"


def _time_line(report) -> str:  # type: ignore[no-untyped-def]
    timings = report.timings
    return (f"time: {timings['total']:.1f} s (compile {timings['compile']:.1f}, solves {timings['solves']:.1f}, "
            f"reference {timings['reference']:.1f}, diagnosis {timings['diagnosis']:.1f}"
            + (f", external gradients {timings['external']:.1f}" if "external" in timings else "") + ")")


def terminal_summary(report, verbose: bool = False, width: int = 110) -> str:  # type: ignore[no-untyped-def]
    """What ``symsens audit`` prints: the one-sentence answer first, then the recommendation and one line per
    verdict (how many runs, the worst of them), worst verdict first; ``verbose`` adds the full table."""
    answer = getattr(report, "answer", None) or {}
    lines = wrap_words(_plain(answer.get("text", "")), width, indent="  ", first="ANSWER: ")
    lines.append("")
    lines.extend(_header_lines(report, width))
    lines.extend(wrap_words(f"recommendation ({report.target_digits:g} digits): {_plain(report.recommendation['text'])}",
                            width, indent="  "))
    lines.append("")
    lines.append(f"verdicts ({len(report.results)} runs, worst first):")
    for category, rows in _ordered_rows(report.results):
        label = VERDICT_LABELS.get(category, category).split(" (")[0]
        if category == "accurate":
            best = max(rows, key=lambda r: r["digits"] if r["digits"] is not None else -1.0)
            detail = (f"best {_run_text(best)} ("
                      + ("exact" if math.isinf(best["digits"]) else f"{best['digits']:.1f} digits") + ")")
        else:
            row = rows[0]
            detail = (f"worst {_run_text(row)} "
                      f"({_row_error(row)})")
        lines.extend(wrap_words(f"{label} ({len(rows)}): {detail}", width, indent="      ", first="  - "))
    lines.append("")
    external = [r for r in report.results if r.get("external")]
    if external:
        lines.append("external gradients (what each computed):")
        for row in external:
            text = f"{_external_label(row)}: {row['verdict']}" + (f"; {row['identification']}" if row.get("identification") else "")
            lines.extend(wrap_words(_plain(text), width, indent="      ", first="  - "))
        lines.append("")
    if verbose:
        lines.append(summary_table(report, width=max(width, 150), heading=False))
    else:
        lines.append("every run with its verdict: --verbose (or report.md / report.html with --out DIR)")
        lines.append(_time_line(report))
    return "\n".join(lines)


# -- blocks ------------------------------------------------------------------------------------------------
class _Document:
    def __init__(self) -> None:
        self.blocks: list[tuple[str, Any]] = []

    def heading(self, level: int, text: str) -> None:
        self.blocks.append(("heading", (level, text)))

    def paragraph(self, text: str) -> None:
        self.blocks.append(("paragraph", text))

    def bullets(self, items: Sequence[str]) -> None:
        self.blocks.append(("bullets", list(items)))

    def table(self, header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
        self.blocks.append(("table", (list(header), [list(r) for r in rows])))

    def figure(self, path: str, caption: str) -> None:
        self.blocks.append(("figure", (path, caption)))

    def answer(self, text: str) -> None:
        """The one-sentence answer: a quoted paragraph in Markdown, a highlighted box in HTML."""
        self.blocks.append(("answer", text))

    def markdown(self) -> str:
        out: list[str] = []
        for kind, value in self.blocks:
            if kind == "heading":
                out.append("#" * value[0] + " " + _md(value[1]))
            elif kind == "paragraph":
                out.append(_md(value))
            elif kind == "bullets":
                out.append("\n".join(f"- {_md(item)}" for item in value))
            elif kind == "table":
                header, rows = value
                lines = ["| " + " | ".join(_md(h, True) for h in header) + " |", "|" + "|".join("---" for _ in header) + "|"]
                lines += ["| " + " | ".join(_md(cell, True) for cell in row) + " |" for row in rows]
                out.append("\n".join(lines))
            elif kind == "figure":
                out.append(f"![{_md(value[1])}]({value[0]})\n\n*{_md(value[1])}*")
            elif kind == "answer":
                out.append("> " + _md(value))
        return "\n\n".join(out) + "\n"

    def html(self, title: str, images: dict[str, str] | None = None) -> str:
        """The document as one HTML page; ``images`` maps a figure's file name to the ``src`` to use instead
        (a ``data:`` URI, so that the page shows its figures wherever it is moved)."""
        images = images or {}
        out = [
            "<!DOCTYPE html>", "<html lang=\"en\"><head><meta charset=\"utf-8\">",
            f"<title>{html.escape(_plain(_bare(title)))}</title>",
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">",
            "<style>body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;max-width:1100px;margin:2em auto;"
            "padding:0 1.5em;color:#1d2330;line-height:1.5}h1{font-size:1.7em;border-bottom:2px solid #2b6cb0;"
            "padding-bottom:.3em}h2{margin-top:1.8em;color:#2b4c7e}table{border-collapse:collapse;font-size:.86em;"
            "margin:1em 0;width:100%}th,td{border:1px solid #d5dae3;padding:.3em .55em;text-align:left;"
            "vertical-align:top}th{background:#eef2f8}tr:nth-child(even) td{background:#f8f9fb}"
            "td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}figure{margin:1.2em 0}img{max-width:100%;"
            "border:1px solid #e2e6ee}figcaption{font-size:.9em;color:#4a5568}.accurate{color:#276749}"
            ".bad{color:#9b2c2c}code{background:#f1f3f7;padding:0 .25em}"
            ".answer{font-size:1.12em;background:#f3f7fc;border-left:5px solid #2b6cb0;padding:.7em 1em;margin:1em 0}"
            ".answer.yes{border-color:#2f855a;background:#f0f8f3}.answer.no{border-color:#c53030;background:#fcf3f3}"
            "</style></head><body>",
        ]
        for kind, value in self.blocks:
            if kind == "heading":
                out.append(f"<h{value[0]}>{html.escape(_bare(value[1]))}</h{value[0]}>")
            elif kind == "paragraph":
                out.append(f"<p>{_inline(value)}</p>")
            elif kind == "bullets":
                out.append("<ul>" + "".join(f"<li>{_inline(item)}</li>" for item in value) + "</ul>")
            elif kind == "table":
                header, rows = value
                cells = "".join(f"<th>{html.escape(_bare(h))}</th>" for h in header)
                body = []
                for row in rows:
                    tds = []
                    for marked in row:
                        cell = _bare(marked)
                        numeric = bool(cell) and (cell[0].isdigit() or cell[0] in "-+–" or cell == "exact")
                        css = []
                        if numeric:
                            css.append("num")
                        if cell.startswith("accurate") or cell.startswith("exact:"):
                            css.append("accurate")
                        elif cell.startswith(("biased", "attenuated", "amplified", "inaccurate", "failed")):
                            css.append("bad")
                        attr = f" class=\"{' '.join(css)}\"" if css else ""
                        tds.append(f"<td{attr}>{_inline(marked)}</td>")
                    body.append("<tr>" + "".join(tds) + "</tr>")
                out.append(f"<table><thead><tr>{cells}</tr></thead><tbody>{''.join(body)}</tbody></table>")
            elif kind == "figure":
                source = images.get(value[0], value[0])
                out.append(f"<figure><img src=\"{html.escape(source)}\" data-file=\"{html.escape(value[0])}\" "
                           f"alt=\"{html.escape(_bare(value[1]))}\">"
                           f"<figcaption>{html.escape(_bare(value[1]))}</figcaption></figure>")
            elif kind == "answer":
                plain = _bare(value)
                css = " yes" if "Answer.** Yes" in plain else (" no" if "Answer.** No" in plain else "")
                out.append(f"<p class=\"answer{css}\">{_inline(value)}</p>")
        out.append("</body></html>")
        return "\n".join(out) + "\n"


def _inline(text: str) -> str:
    """Escape, then render `code` and **bold** spans of the report's own text; user text is only escaped."""
    return "".join(html.escape(piece) if user else _inline_markup(piece) for user, piece in _segments(text))


def _inline_markup(text: str) -> str:
    escaped = html.escape(text)
    parts = escaped.split("`")
    for i in range(1, len(parts), 2):
        parts[i] = f"<code>{parts[i]}</code>"
    escaped = "".join(parts)
    pieces = escaped.split("**")
    for i in range(1, len(pieces), 2):
        pieces[i] = f"<strong>{pieces[i]}</strong>"
    return "".join(pieces)


# -- the report --------------------------------------------------------------------------------------------
def _external_label(row: dict[str, Any]) -> str:
    from ._external import external_label

    return external_label(row)


def _external_section(doc: _Document, report) -> None:  # type: ignore[no-untyped-def]
    """External gradients: their verdicts and what each computed (the symsens method each equals), and the loss
    data they must use."""
    external = [r for r in report.results if r.get("external")]
    if external:
        doc.heading(2, "External gradients")
        doc.paragraph("Gradients computed by other tools, judged against the same reference and identified with "
                      "the symsens method each equals (agreement in digits, -log10 of the relative 2-norm "
                      "distance, at the same tolerance and scheme when those were audited). A match needs at least "
                      "3 digits and one digit more than the agreement with the true gradient; methods that agree "
                      "with each other as closely cannot be told apart.")
        rows = []
        for row in external:
            norm = None if row["gradient"] is None else float(stable_norm(row["gradient"]))
            match = row.get("identified_as")
            rows.append([_u(row["method"]), _u(row.get("solver") or row.get("source") or "–"), _rtol_cell(row["rtol"]),
                         format_number(row["loss"]), format_number(norm), _error_text(row), _digits_text(row["digits"]),
                         "–" if match is None else _u(f"{match['method']} ({match['scheme']}, rtol {rtol_text(match['rtol'])})"),
                         _digits_text(row.get("match_digits")), _u(row["verdict"])])
        doc.table(["name", "solver / source", "rtol", "loss", "|gradient|", "error", "digits", "identified as",
                   "match digits", "verdict"], rows)
        doc.bullets([f"{_u(_external_label(row))}: {_u(row['identification'])}" for row in external
                     if row.get("identification")])
    data = getattr(report, "loss_data", None)
    if data:
        times = data.get("times")
        where = (f"{len(times)} times from {format_number(times[0], 6)} to {format_number(times[-1], 6)}"
                 if times else "its own step times")
        doc.heading(3 if external else 2, "Loss data")
        doc.paragraph(f"The loss an external gradient must differentiate: {_u(data['loss'])}, at {where}"
                      + (f", compared outputs {_u(', '.join(data['outputs']))}" if data.get("outputs") else "")
                      + f". {_u(data['note'])}. report.json has the times and targets (`loss_data`); "
                      "`symsens.audit.loss_data(...)` or `symsens audit MODEL --write-loss-data FILE.json` gives them "
                      "before the gradient is computed.")


def _build(report, figures: dict[str, str]) -> _Document:  # type: ignore[no-untyped-def]
    from ._glossary import GLOSSARY

    doc = _Document()
    doc.heading(1, f"Gradient audit: {_u(report.model_name)}")
    answer = getattr(report, "answer", None)
    if answer:
        doc.answer(f"**Answer.** {_u(answer['text'])}")
    if "convergence" in figures:
        doc.figure(figures["convergence"], "Gradient error against tolerance, per scheme and method "
                   "(relative error; absolute |g| where the true gradient is 0); the ringed point is your setting.")
    doc.paragraph(f"Loss: {_u(report.loss_description)}; time span {report.t_span[0]:g} to {report.t_span[1]:g}; "
                  f"gradient with respect to {len(report.parameters)} parameter{'s' if len(report.parameters) != 1 else ''}.")
    if getattr(report, "parameter_map", None):
        doc.paragraph(f"Gradient: {_u(report.parameter_map)}.")
    if "data_fit" in figures:
        doc.figure(figures["data_fit"], "The loss's data (circles) and the model's trajectory at the audited parameters "
                   "(line), per compared quantity: the fit whose gradient is audited.")
    doc.paragraph(f"**Recommendation** ({report.target_digits:g} correct digits): {_u(report.recommendation['text'])}.")

    findings = []
    for category, rows in _ordered_rows(report.results):
        label = VERDICT_LABELS.get(category, category)
        text = f"**{len(rows)} of {len(report.results)}** {label}"
        if category != "accurate":
            worst = max(rows, key=lambda r: r["absolute_error"] if r["absolute_error"] is not None else -1.0)
            if worst["absolute_error"] is not None:
                text += (f"; the worst: {_u(_run_text(worst))}, "
                         f"error {format_number(worst['absolute_error'])} (|g*| "
                         f"{format_number(float(stable_norm(report.reference_gradient)))})")
        findings.append(text)
    doc.heading(2, "Findings")
    doc.bullets(findings)

    doc.heading(2, "The true gradient")
    doc.paragraph(f"True loss at these parameters: {format_number(report.loss_at_nominal, 6)}. {_u(report.reference_how)}.")
    doc.table(["parameter", "value", "reference dL/dp", "digits"], [
        [_u(name), format_number(value, 6), format_number(g, 10), _digits_text(d)]
        for name, value, g, d in zip(report.parameters, report.parameter_values, report.reference_gradient,
                                     report.reference_digits)
    ])

    _external_section(doc, report)

    doc.heading(2, "Verdicts")
    groups = _ordered_rows(report.results)
    doc.paragraph("Every run, grouped by verdict, the worst first: "
                  + ", ".join(f"{VERDICT_LABELS.get(c, c).split(' (')[0]} {len(r)}" for c, r in groups) + ".")
    for category, members in groups:
        doc.heading(3, f"{VERDICT_LABELS.get(category, category)} ({len(members)})")
        rows = []
        for row in members:
            norm = None if row["gradient"] is None else float(stable_norm(row["gradient"]))
            rows.append([_u(row["method"]), _u(row["scheme"]), _rtol_cell(row["rtol"]), format_number(row["loss"]),
                         format_number(norm), _error_text(row), _digits_text(row["digits"]),
                         str(row["steps"] if row["steps"] is not None else "–"),
                         format_number(row.get("work"), 2), _u(row["verdict"])])
        # Wall time is in report.json (`seconds`); the table shows the machine-independent work estimate.
        doc.table(["method", "scheme", "rtol", "loss", "|gradient|", "error", "digits", "steps", "work (flops)",
                   "verdict"], rows)

    doc.heading(2, "Gradient methods")
    doc.paragraph("What each method computes and which tools compute the same gradient "
                  "(`symsens audit --explain METHOD` prints this).")
    used = list(dict.fromkeys(row["method"] for row in report.results if not row.get("external")))
    doc.table(["method", "what it computes", "the same as"], [
        [_u(name), GLOSSARY[name][1], GLOSSARY[name][2]] if name in GLOSSARY else [_u(name), "", ""] for name in used])

    diagnostics = report.diagnostics
    doc.heading(2, "Diagnosis")
    doc.heading(3, "Loss floor")
    floor = [r for r in diagnostics.get("loss_floor", []) if r["loss_floor"] and r["loss_floor"] > 0]
    doc.paragraph(
        "The loss each run computes at the audited parameters, minus the true loss: non-zero means the solver's "
        "output at the loss times differs from its targets, and the residual part of the gradient, "
        "sum_k (dl/dy)_k S_k, is then biased. " + (f"{len(floor)} runs have a positive loss floor; the largest:" if floor
                                                  else "No run has a positive loss floor."))
    if floor:
        top = sorted(floor, key=lambda r: -r["loss_floor"])[:8]
        doc.table(["method", "scheme", "rtol", "loss", "true loss", "largest residual (at t)",
                   "|gradient from the residual error|"], [
            [_u(r["method"]), _u(r["scheme"]), f"{r['rtol']:.0e}", format_number(r["loss"]), format_number(r["true_loss"]),
             "–" if r.get("max_residual") is None else
             f"{format_number(r['max_residual'])} (t = {format_number(r['time_of_max_residual'], 6)})",
             format_number(r["loss_floor_bias_norm"])] for r in top])
    dominant = diagnostics.get("dominant_times")
    if dominant:
        share = dominant["share_of_gradient_terms"]
        doc.paragraph(
            f"Where the gradient comes from ({_u(dominant['method'])}, {_u(dominant['scheme'])}, rtol {rtol_text(dominant['rtol'])}): the five "
            f"output times with the largest terms |(dl/dy)_k S_k| are t = "
            + ", ".join(format_number(t, 6) for t in dominant["times"])
            + (f"; they carry {100 * share:.0f}% of the sum of term norms" if share is not None else "")
            + ("; there ||S|| is " + ", ".join(format_number(v) for v in dominant["sensitivity_norm_there"])
               + f" against a median {format_number(dominant['median_sensitivity_norm'])}" if dominant.get("sensitivity_norm_there") else "")
            + ".")
    if "loss_floor" in figures:
        doc.figure(figures["loss_floor"], "Per output time: the size of the gradient term (dl/dy)_k S_k of the run named "
                   "in the legend (the forward-mode AD run with tangents in the norm when it is biased, else the most "
                   "biased run of the first scheme's loosest tolerance), and the sensitivity norm ||S(t_k)||.")

    doc.heading(3, "Stiffness")
    eig = diagnostics.get("eigenvalue_range")
    if eig:
        doc.paragraph(f"Eigenvalues of df/dy along the trajectory: largest modulus {format_number(eig['max_modulus'])}, "
                      f"most negative real part {format_number(eig['most_negative_real_part'])}.")
    stiff = diagnostics.get("stiffness", [])
    if stiff:
        doc.table(["scheme", "rtol", "steps", "max |h λ|", "median |h λ|", "steps with |z|>1", "at stability boundary",
                   "max |R'(z)|", "median |z R'(z)| (|z|>1)"], [
            [_u(r["scheme"]), f"{r['rtol']:.0e}", str(r["steps"]), format_number(r["max_abs_h_lambda"]),
             format_number(r["median_abs_h_lambda"]),
             format_number(100 * r["share_of_steps_with_abs_z_over_1"], 3) + "%" if "share_of_steps_with_abs_z_over_1" in r else "–",
             format_number(100 * r.get("share_at_stability_boundary", 0), 3) + "%" if r.get("explicit") else "–",
             format_number(r.get("max_abs_dR")), format_number(r.get("median_abs_z_dR_where_abs_z_over_1"))]
            for r in stiff])
        doc.paragraph("z = h λ uses the eigenvalue of largest modulus at each step. For A-stable schemes a step "
                      "with |z| ≫ 1 attenuates the sensitivity to the mode's rate (|z R'(z)| → 0, from the scheme's "
                      "exact R); explicit schemes at their stability boundary (|R(z)| near 1, |z| > 1) amplify it "
                      "(|R'(z)| large). BDF is multistep: only |h λ| is shown.")
    if "stiffness" in figures:
        doc.figure(figures["stiffness"], "|h λ| per accepted step (left) and where the steps sit on each scheme's |R'(z)| (right).")

    doc.heading(3, "Sensitivity growth")
    growth = diagnostics.get("sensitivity_growth")
    if growth:
        doc.paragraph(f"From {_u(growth['source'])}: ||S|| goes from {format_number(growth['initial_norm'])} to "
                      f"{format_number(growth['final_norm'])}, maximum {format_number(growth['max_norm'])} at "
                      f"t = {format_number(growth['time_of_max'], 6)}; finite-time growth rate "
                      f"{format_number(growth['growth_rate'])} per unit time.")
    if "sensitivity" in figures:
        doc.figure(figures["sensitivity"], "Sensitivity norm ||S(t)||_F over time.")

    doc.heading(3, "Step-size control")
    control = [r for r in diagnostics.get("step_size_control", []) if r["method"].startswith("discrete")]
    if control:
        doc.table(["scheme", "rtol", "method", "steps", "nominal steps", "same steps", "first difference after t",
                   "gradient change vs discrete"], [
            [_u(r["scheme"]), f"{r['rtol']:.0e}", _u(r["method"]), str(r["steps"]), str(r["nominal_steps"]),
             "yes" if r["identical_steps"] else "no", format_number(r["first_different_step_at"], 6),
             format_number(r["gradient_change_vs_discrete"])] for r in control])
    if "steps" in figures:
        doc.figure(figures["steps"], "Step sizes of the nominal solve and of the differentiated solve whose "
                   "controller sees the tangents.")

    adjoint_rows = [r for r in report.results if str(r["method"]).startswith("adjoint-")]
    if adjoint_rows:
        doc.heading(3, "Adjoints")
        growth = diagnostics.get("backward_growth")
        text = ("The continuous adjoints run SciPy's integrator named in the table (the compiled scheme's "
                "counterpart); their backward pass uses adjoint_rtol and adjoint_atol. adjoint-discrete is reverse "
                "mode through the compiled solve's accepted steps (explicit Runge–Kutta, Rosenbrock, SDIRK/ESDIRK, "
                "Radau IIA, BDF).")
        if growth:
            text += (f" Backward state solve (backsolve): growth rate max Re(-λ) up to "
                     f"{format_number(growth['max_rate'])} per unit time (at t = {format_number(growth['time_of_max'], 6)}, "
                     f"median {format_number(growth['median_rate'])}).")
        doc.paragraph(text)
        doc.table(["method", "scheme", "integrator", "rtol", "adjoint rtol", "adjoint atol",
                   "y(t0) reconstruction error", "backward span", "verdict"], [
            [_u(r["method"]), _u(r["scheme"]), _u(r.get("integrator") or "–"), f"{r['rtol']:.0e}",
             format_number(r.get("adjoint_rtol")), format_number(r.get("adjoint_atol")),
             format_number(r.get("y0_reconstruction_error")), format_number(r.get("backward_span")),
             _u(r["verdict"])] for r in adjoint_rows])

    doc.heading(3, "Convergence")
    conv = diagnostics.get("convergence", [])
    if conv:
        doc.table(["scheme", "method", "fitted rate d log(error)/d log(rtol)", "converges"], [
            [_u(r["scheme"]), _u(r["method"]), format_number(r["rate"], 2), _u(r["status"])] for r in conv])

    timings = report.timings
    doc.heading(2, "Cost")
    doc.paragraph(f"Total {timings['total']:.1f} s: compile {timings['compile']:.1f} s, solves {timings['solves']:.1f} s, "
                  f"reference {timings['reference']:.1f} s, diagnosis {timings['diagnosis']:.1f} s"
                  + (f", external gradients {timings['external']:.1f} s" if "external" in timings else "") + ".")
    return doc


def write_report(report, directory: str | os.PathLike[str]) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """Write report.md, report.html, report.json and the figures into ``directory``."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from ..plotting._audit import audit_figures

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    figures: dict[str, str] = {}
    for name, figure in audit_figures(report).items():
        path = out / f"{name}.png"
        figure.savefig(path, dpi=110)
        plt.close(figure)
        figures[name] = path.name
    doc = _build(report, figures)
    # The HTML carries its figures as data URIs: a moved or e-mailed report.html still shows them.
    images = {name: "data:image/png;base64," + base64.b64encode((out / name).read_bytes()).decode("ascii")
              for name in figures.values()}
    paths = {"markdown": out / "report.md", "html": out / "report.html", "json": out / "report.json"}
    paths["markdown"].write_text(doc.markdown(), encoding="utf-8")
    paths["html"].write_text(doc.html(f"Gradient audit: {report.model_name}", images), encoding="utf-8")
    paths["json"].write_text(json.dumps(report.to_json_dict(), indent=1, allow_nan=False), encoding="utf-8")
    return {**{k: str(v) for k, v in paths.items()}, **{k: str(out / v) for k, v in figures.items()}}
