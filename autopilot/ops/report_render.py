"""`ReportData` -> one self-contained HTML page: styles inline, charts as inline SVG (matplotlib),
thumbnails as PNG data URIs. Nothing is fetched when the page is opened. No AWS here."""

from __future__ import annotations

import base64
import html
import io
from datetime import UTC, datetime

import matplotlib

matplotlib.use("Agg")  # no display: render to SVG only

import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from PIL import Image, ImageDraw

from autopilot.ops.report_data import NO_LABEL, Evaluation, ReportData, TestImage

THUMBNAIL_SIDE = 160
MAX_REJECTIONS_SHOWN = 50
OUTCOME_COLOURS = {"TP": "#2ca02c", "FP": "#d62728", "FN": "#ff7f0e"}
CURRENT, PREVIOUS = "#1f77b4", "#9ecae1"

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#222;max-width:1100px}
h1{font-size:1.6em;margin-bottom:0}h2{border-bottom:2px solid #1f77b4;padding-bottom:4px;margin-top:32px}
.muted{color:#666}.figures{display:flex;gap:16px;flex-wrap:wrap}
.figure{background:#f5f8fb;border-radius:8px;padding:12px 18px}.figure b{font-size:1.5em;display:block}
table{border-collapse:collapse;margin:12px 0}
td,th{border-bottom:1px solid #ddd;padding:4px 10px;text-align:right}
th:first-child,td:first-child{text-align:left}.chart svg{max-width:100%;height:auto}
.thumbs{display:flex;flex-wrap:wrap;gap:12px}.thumb{width:170px;font-size:0.8em}
.thumb img{border:1px solid #ccc;display:block}.bad{color:#d62728}.good{color:#2ca02c}
"""


def _svg(figure: Figure) -> str:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight")
    plt.close(figure)
    text = buffer.getvalue()
    return text[text.index("<svg") :]  # drop the XML prolog and doctype: inline SVG


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def label_chart(current: Evaluation, previous: Evaluation | None) -> str:
    labels = [row.label for row in current.labels]
    figure, axis = plt.subplots(figsize=(max(4.0, 0.6 * len(labels) + 2), 2.8))
    width = 0.4 if previous else 0.7
    positions = list(range(len(labels)))
    axis.bar(positions, [row.f1 for row in current.labels], width, color=CURRENT, label=current.version)
    if previous is not None:
        before = {row.label: row.f1 for row in previous.labels}
        axis.bar(
            [p + width for p in positions],
            [before.get(label, 0.0) for label in labels],
            width,
            color=PREVIOUS,
            label=previous.version,
        )
        axis.legend(fontsize=7, loc="lower right")
    axis.set_xticks([p + (width / 2 if previous else 0) for p in positions], labels, rotation=45, ha="right")
    axis.set_ylim(0, 1.05)
    axis.set_ylabel("F1")
    axis.set_title("F1 per label")
    return _svg(figure)


def confusion_chart(evaluation: Evaluation) -> str:
    matrix = evaluation.confusion()
    truths = sorted({t for t, _ in matrix})
    predicted = sorted({p for _, p in matrix} | set(truths), key=lambda x: (x == NO_LABEL, x))
    grid = [[matrix.get((t, p), 0) for p in predicted] for t in truths]
    figure, axis = plt.subplots(figsize=(0.5 * len(predicted) + 2.5, 0.45 * len(truths) + 1.8))
    axis.imshow(grid, cmap="Blues")
    for row, values in enumerate(grid):
        for column, value in enumerate(values):
            if value:
                dark = value > 0.5 * max(max(r) for r in grid)
                axis.text(
                    column,
                    row,
                    str(value),
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="white" if dark else "black",
                )
    axis.set_xticks(range(len(predicted)), predicted, rotation=45, ha="right", fontsize=8)
    axis.set_yticks(range(len(truths)), truths, fontsize=8)
    axis.set_xlabel("predicted (top label)")
    axis.set_ylabel("true label")
    axis.set_title("Confusion matrix (test images)")
    return _svg(figure)


def data_chart(labels: dict[str, dict[str, int]]) -> str:
    names = sorted({name for counts in labels.values() for name in counts})
    figure, axis = plt.subplots(figsize=(max(4.0, 0.6 * len(names) + 2), 2.6))
    positions = list(range(len(names)))
    train = [labels.get("TRAIN", {}).get(name, 0) for name in names]
    test = [labels.get("TEST", {}).get(name, 0) for name in names]
    axis.bar(positions, train, color=CURRENT, label="TRAIN")
    axis.bar(positions, test, bottom=train, color=PREVIOUS, label="TEST")
    axis.set_xticks(positions, names, rotation=45, ha="right")
    axis.set_ylabel("entries")
    axis.legend(fontsize=7)
    axis.set_title("Entries per label")
    return _svg(figure)


def serving_chart(report: ReportData) -> str:
    """Running intervals above the detections. The axis spans the period, or zooms in on the
    activity when all of it happened in a small part of the period (a fresh stack, a demo); the
    detections are counted per hour, or per minute when zoomed in."""
    serving = report.serving
    stamps = serving.detection_times
    first = min([i.start for i in serving.intervals] + stamps, default=serving.since)
    start = max(serving.since, first - max(0.05 * (serving.until - first), 60.0))
    span = serving.until - start
    unit, name = (3600.0, "hours") if span > 3 * 3600 else (60.0, "minutes")

    def at(t: float) -> float:
        return (max(t, start) - start) / unit

    figure, (running, detections) = plt.subplots(2, 1, figsize=(9, 3.2), sharex=True, height_ratios=[1, 2])
    running.broken_barh(
        [(at(i.start), max(at(i.end) - at(i.start), span / unit / 400)) for i in serving.intervals],
        (0, 1),
        color=CURRENT,
    )
    running.set_yticks([])
    running.set_ylabel("running", rotation=0, ha="right", va="center")
    edges = [float(b) for b in range(0, int(span / unit) + 2)]  # one bin per hour (or minute)
    detections.hist([at(t) for t in stamps], bins=edges, color="#555")
    detections.set_ylabel(f"detections / {name[:-1]}")
    detections.set_xlim(0, span / unit)
    detections.set_xlabel(f"{name} since {datetime.fromtimestamp(start, UTC):%Y-%m-%d %H:%M} UTC")
    running.set_title("Serving: when the model ran, and the work it did")
    return _svg(figure)


def thumbnail(image: TestImage, data: bytes | None) -> str:
    truth = ", ".join(image.truth) or NO_LABEL
    wrong = [j for j in image.judged if j.outcome in ("FP", "FN")]
    caption = "; ".join(f"{j.outcome} {html.escape(j.label)} {j.confidence:.2f}" for j in wrong)
    picture = "<div class='muted'>(image not readable)</div>"
    if data is not None:
        try:
            with Image.open(io.BytesIO(data)) as opened:
                rgb = opened.convert("RGB")
        except OSError:
            rgb = None
        if rgb is not None:
            width, height = rgb.size
            draw = ImageDraw.Draw(rgb)
            for judged in image.judged:
                if judged.box is None:
                    continue
                left, top, w, h = judged.box
                draw.rectangle(
                    [left * width, top * height, (left + w) * width, (top + h) * height],
                    outline=OUTCOME_COLOURS.get(judged.outcome, "#000"),
                    width=max(1, width // 64),
                )
            rgb.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
            buffer = io.BytesIO()
            rgb.save(buffer, format="PNG")
            uri = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
            picture = f"<img src='{uri}' alt='{html.escape(image.source_ref)}' width='{rgb.size[0]}'>"
    name = html.escape(image.source_ref.rsplit("/", 1)[-1])
    return (
        f"<div class='thumb' data-source-ref='{html.escape(image.source_ref)}'>{picture}"
        f"<div><b>{name}</b></div><div>true: {html.escape(truth)}</div><div class='bad'>{caption}</div></div>"
    )


def _evaluation_html(report: ReportData) -> str:
    evaluation, previous = report.evaluation, report.previous
    if evaluation is None:
        return "<p class='muted'>No version is in production yet and none was named (--version).</p>"
    before = {row.label: row for row in previous.labels} if previous else {}
    rows = "".join(
        f"<tr data-label='{html.escape(row.label)}'><td>{html.escape(row.label)}</td><td>{row.f1:.3f}</td>"
        f"<td>{row.precision:.3f}</td><td>{row.recall:.3f}</td><td>{row.threshold:.3f}</td>"
        f"<td>{row.test_images}</td>"
        + (
            f"<td>{before[row.label].f1:.3f}</td>"
            if row.label in before
            else ("<td>-</td>" if previous else "")
        )
        + "</tr>"
        for row in evaluation.labels
    )
    previous_head = f"<th>F1 {html.escape(previous.version)}</th>" if previous else ""
    wrong = [image for image in evaluation.images if image.wrong]
    shown = [image for image in wrong if image.source_ref in report.images]
    thumbs = "".join(thumbnail(image, report.images.get(image.source_ref)) for image in shown)
    compared = (
        f"<div class='figure'>previous F1<b>{_pct(previous.f1)}</b>{html.escape(previous.version)}</div>"
        if previous
        else ""
    )
    parts = [
        f"<p>Version <b>{html.escape(evaluation.version)}</b> ({html.escape(evaluation.status)}, "
        f"{evaluation.kind}), evaluated on {len(evaluation.images)} test images.</p>",
        "<div class='figures'>"
        f"<div class='figure'>F1<b>{_pct(evaluation.f1)}</b></div>"
        f"<div class='figure'>precision<b>{_pct(evaluation.precision)}</b></div>"
        f"<div class='figure'>recall<b>{_pct(evaluation.recall)}</b></div>{compared}</div>",
        "<table id='labels'><tr><th>label</th><th>F1</th><th>precision</th><th>recall</th>"
        f"<th>assumed threshold</th><th>test images</th>{previous_head}</tr>{rows}</table>",
    ]
    if evaluation.labels:
        parts.append(f"<div class='chart'>{label_chart(evaluation, previous)}</div>")
    if evaluation.kind == "classification" and evaluation.images:
        matrix = evaluation.confusion()
        cells = "".join(
            f"<tr><td>{html.escape(t)}</td><td>{html.escape(p)}</td><td>{n}</td></tr>"
            for (t, p), n in sorted(matrix.items())
        )
        parts.append(f"<div class='chart'>{confusion_chart(evaluation)}</div>")
        parts.append(
            "<details><summary>confusion matrix as a table</summary><table id='confusion'>"
            f"<tr><th>true</th><th>predicted</th><th>images</th></tr>{cells}</table></details>"
        )
    parts.append(
        f"<h3>Wrong on the test set: {len(wrong)} images"
        + (f" (first {len(shown)} shown)" if len(shown) < len(wrong) else "")
        + "</h3>"
        + (f"<div class='thumbs'>{thumbs}</div>" if thumbs else "<p class='muted'>none</p>")
    )
    return "".join(parts)


def _data_html(report: ReportData) -> str:
    data = report.data
    rows = "".join(
        f"<tr><td>{kind}</td><td>{stats.get('TotalEntries', 0)}</td><td>{stats.get('LabeledEntries', 0)}</td>"
        f"<td>{stats.get('TotalLabels', 0)}</td><td>{stats.get('ErrorEntries', 0)}</td></tr>"
        for kind, stats in sorted(data.stats.items())
    )
    chart = f"<div class='chart'>{data_chart(data.labels)}</div>" if data.labels else ""
    shown = data.rejections[:MAX_REJECTIONS_SHOWN]
    rejected = "".join(
        f"<tr><td>{html.escape(r.time[:19])}</td><td>{html.escape(r.key)}</td><td>{html.escape(r.reason)}</td></tr>"
        for r in shown
    )
    more = f" (newest {len(shown)} shown)" if len(shown) < len(data.rejections) else ""
    rejections = f"<h3>Rejected uploads, last days: {len(data.rejections)}{more}</h3>" + (
        f"<table id='rejections'><tr><th>time (UTC)</th><th>key</th><th>reason</th></tr>{rejected}</table>"
        if rejected
        else "<p class='muted'>none</p>"
    )
    return (
        "<table id='datasets'><tr><th>dataset</th><th>entries</th><th>labeled</th><th>labels</th>"
        f"<th>entries with errors</th></tr>{rows}</table>{chart}{rejections}"
    )


def _transitions_html(report: ReportData) -> str:
    rows = "".join(
        f"<tr><td>{datetime.fromtimestamp(e.at, UTC):%Y-%m-%d %H:%M:%S}</td>"
        f"<td>{'started' if e.status == 'RUNNING' else 'stopped'}</td><td>{html.escape(e.version)}</td>"
        f"<td>{e.units}</td><td>{html.escape(e.reason or '-')}</td></tr>"
        for e in report.serving.transitions
    )
    if not rows:
        return "<p class='muted'>no starts or stops in this period</p>"
    return (
        "<table id='transitions'><tr><th>time (UTC)</th><th>model</th><th>version</th><th>units</th>"
        f"<th>why (the controller's reason)</th></tr>{rows}</table>"
    )


def _serving_html(report: ReportData) -> str:
    serving = report.serving
    total = len(serving.detection_times)
    return (
        "<div class='figures'>"
        f"<div class='figure'>inference-unit hours<b>{serving.iu_hours:.2f}</b></div>"
        f"<div class='figure'>estimate<b>{serving.usd:.2f} USD</b>at 4 USD per IU-hour</div>"
        f"<div class='figure'>starts<b>{serving.starts}</b></div>"
        f"<div class='figure'>detections<b>{total}</b></div></div>"
        f"<div class='chart'>{serving_chart(report)}</div>"
        f"{_transitions_html(report)}"
        "<p class='muted'>Running intervals from the usage ledger (the same figures as "
        "<code>autopilot cost</code>); detections from the results kept under "
        f"<code>{html.escape(report.project)}/results/</code>.</p>"
    )


def render(report: ReportData) -> str:
    generated = datetime.fromtimestamp(report.generated_at, UTC).strftime("%Y-%m-%d %H:%M UTC")
    title = f"{report.project}: model and serving report"
    days = (report.serving.until - report.serving.since) / 86400
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>"
        f"<h1>{html.escape(title)}</h1><p class='muted'>generated {generated}</p>"
        f"<h2>Evaluation</h2>{_evaluation_html(report)}"
        f"<h2>Data</h2>{_data_html(report)}"
        f"<h2>Serving, last {days:.0f} days</h2>{_serving_html(report)}"
        "</body></html>"
    )
