"""``report.html`` of a ``signgen eval`` run: a static page that opens from disk, with no
server and no network (its script and style are inlined from ``signgen/assets/report``).

It shows the summary table (every metric with its protocol in one line, the copy-the-photo
baseline and the ground truth's readability where the run has them), one row per video
(sortable by each figure, filterable by split, with its side-by-side video reference |
render | driving pose, its glosses and its figures; opening a row plots SSIM, hand-SSIM and
TDE over its frames), the five worst videos by hand-SSIM, the run's settings, and what is
wrong with the folder (failed videos, rows that do not parse, videos missing on disk).

:func:`write_report` is what ``signgen eval`` calls at the end of a run and what
``signgen eval report RUN_DIR`` calls on a finished or interrupted one. It only reads the
run folder and writes ``RUN_DIR/report.html`` (atomically).
"""

from __future__ import annotations

import html
import json
import math
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import quote

from signgen.atomic import atomic_output
from signgen.errors import SigngenError, first_line
from signgen.evaluation.report import PAIRED_METRICS, SUMMARY_JSON, summary_table_rows
from signgen.evaluation.shards import RUN_CONFIG_NAME, SHARDS_DIR, SIDE_BY_SIDE_DIR

REPORT_NAME = "report.html"
ALL_SPLITS = "*all*"  # the split filter's "every split" value; report.js knows it too (no split is named so)
COMMAND_NAME = "command.json"  # the command line and signgen version of the run's last start
PER_VIDEO_NAME = "per_video.jsonl"
WORST_COUNT = 5
# The figures of the video table: (row key, column heading).
VIDEO_COLUMNS = tuple((name, name) for name in PAIRED_METRICS) + (("wer_video", "WER (video reader)"),
                                                                  ("wer_pose", "WER (pose reader)"))


@dataclass
class RunView:
    """What the report shows, read from a run folder."""

    run_dir: Path
    config: dict
    command: dict
    summary: dict
    partial: bool  # True: no summary.json, figures from the rows found so far
    rows: list[dict] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


# ---------------------------------------------------------------- reading the run folder


def _number(value) -> float | None:
    """A finite number as float; anything else (a string, NaN, a bool, None) as None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _read_json_object(path: Path) -> dict | None:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return value if isinstance(value, dict) else None


def _row_files(run_dir: Path) -> list[Path]:
    merged = run_dir / PER_VIDEO_NAME
    if merged.is_file():
        return [merged]
    return sorted((run_dir / SHARDS_DIR).glob("rank-*.jsonl"))


def tolerant_rows(run_dir: Path) -> tuple[list[dict], list[str]]:
    """The rows of the run (per_video.jsonl of a finished run, else every shard), first row
    of a name wins; a line that is not a row is left out and named in the problems."""
    rows: dict[str, dict] = {}
    problems = []
    for path in _row_files(run_dir):
        try:
            lines = path.read_bytes().split(b"\n")
        except OSError as error:
            problems.append(f"{path.name}: cannot be read ({error.strerror or type(error).__name__})")
            continue
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError):
                problems.append(f"{path.relative_to(run_dir)} line {number}: not a JSON row (left out)")
                continue
            if not isinstance(row, dict) or not isinstance(row.get("name"), str) or not row["name"]:
                problems.append(f"{path.relative_to(run_dir)} line {number}: not a row of signgen eval (left out)")
                continue
            rows.setdefault(row["name"], row)
    return list(rows.values()), problems


def _partial_summary(config: dict, rows: list[dict], problems: list[str]) -> dict:
    """Corpus figures of the rows found so far (no Fréchet distances: those are merged at
    the end of a run)."""
    from types import SimpleNamespace

    from signgen.evaluation.report import summarize
    from signgen.evaluation.shards import FeatureStatistics

    options = SimpleNamespace(drive=config.get("drive", "pose"), fid_frames_per_video=config.get("fid_frames_per_video"),
                              pose_fidelity=bool(config.get("pose_fidelity")) and all(
                                  isinstance(r.get("pose_fidelity"), dict) for r in rows if r.get("status") == "ok"))
    skipped = {metric: "the run is not finished: Fréchet statistics are merged at its end"
               for metric in ("fid", "fid_vid", "fvd")}
    try:
        summary = summarize(rows, FeatureStatistics({}), skipped, options, config, len(rows))
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        problems.append(f"the rows found do not summarize ({type(error).__name__}: {error}); figures per video only")
        summary = {"run": config, "videos": {"evaluated": 0, "failed": 0}, "failed": [], "metrics": {}}
    # an interrupted run's folder does not say how many videos it was to evaluate
    summary["videos"].update(in_run=None, remaining=None)
    return summary


def _checked_summary(summary: dict, rows: list[dict], problems: list[str]) -> dict:
    """``summary`` with a "videos" that is not an object or a "failed" that is not a list
    treated as missing (counted from the rows instead), each named in ``problems``."""
    summary = dict(summary)
    if not isinstance(summary.get("videos"), dict):
        problems.append(f'{SUMMARY_JSON}: "videos" is not an object (left out); video counts from the rows found')
        ok = sum(1 for row in rows if row.get("status") == "ok")
        summary["videos"] = {"in_run": None, "evaluated": ok, "failed": len(rows) - ok, "remaining": None}
    if not isinstance(summary.get("failed"), list):
        if "failed" in summary:
            problems.append(f'{SUMMARY_JSON}: "failed" is not a list (left out)')
        summary["failed"] = []
    return summary


def load_run(run_dir: str | Path) -> RunView:
    """Read a run folder for the report: run.json must be there; everything else is read
    as far as it can be, and what is missing or damaged is named in ``problems``."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise SigngenError(f"run folder not found: {run_dir}")
    config = _read_json_object(run_dir / RUN_CONFIG_NAME)
    if config is None:
        raise SigngenError(f"{run_dir} holds no readable {RUN_CONFIG_NAME}: not a signgen eval run folder")
    rows, problems = tolerant_rows(run_dir)
    summary = _read_json_object(run_dir / SUMMARY_JSON)
    partial = summary is None or not isinstance(summary.get("metrics"), dict)
    if partial:
        if (run_dir / SUMMARY_JSON).exists():
            problems.append(f"{SUMMARY_JSON} is not readable; figures from the rows found")
        summary = _partial_summary(config, rows, problems)
    else:
        summary = _checked_summary(summary, rows, problems)
    view = RunView(run_dir, config, _read_json_object(run_dir / COMMAND_NAME) or {}, summary, partial)
    view.rows = [video_entry(run_dir, row, problems) for row in rows]
    view.problems = problems
    return view


def _reading(row: dict, reader: str, which: str) -> dict:
    readability = row.get("readability")
    part = readability.get(reader) if isinstance(readability, dict) else None
    found = part.get(which) if isinstance(part, dict) else None
    return found if isinstance(found, dict) else {}


def video_entry(run_dir: Path, row: dict, problems: list[str]) -> dict[str, Any]:
    """One video's row as the page uses it: figures as numbers or None, the per-frame series,
    its side-by-side video's path relative to the run folder (None when missing)."""
    name = row["name"]
    entry: dict[str, Any] = {"name": name, "status": str(row.get("status", "unknown")), "reason": str(row.get("reason", "")),
                             "split": str(row.get("split", "")), "signer": str(row.get("signer", "")),
                             "glosses": str(row.get("glosses", "")), "frames": _number(row.get("frames"))}
    for key in PAIRED_METRICS:
        entry[key] = _number(row.get(key))
    entry["wer_video"] = _number(_reading(row, "video", "generated").get("wer"))
    entry["wer_pose"] = _number(_reading(row, "pose", "generated").get("wer"))
    read = _reading(row, "video", "generated").get("glosses")
    entry["read_glosses"] = " ".join(map(str, read)) if isinstance(read, list) else None
    series = row.get("per_frame") if isinstance(row.get("per_frame"), dict) else {}
    entry["per_frame"] = {key: [_number(v) for v in values] for key, values in series.items()
                          if isinstance(values, list)}
    entry["video"] = None
    if entry["status"] == "ok":
        video = run_dir / SIDE_BY_SIDE_DIR / f"{name}.mp4"
        if video.is_file() and video.parent == run_dir / SIDE_BY_SIDE_DIR:
            entry["video"] = f"{SIDE_BY_SIDE_DIR}/{quote(name)}.mp4"
        else:
            problems.append(f"video missing: {SIDE_BY_SIDE_DIR}/{name}.mp4 (row {name} has no side-by-side video)")
    return entry


# ---------------------------------------------------------------- the page


def _e(value) -> str:
    return html.escape(str(value), quote=True)


def _shown(value, digits: int = 4) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _asset(name: str) -> str:
    return resources.files("signgen").joinpath("assets", "report", name).read_text(encoding="utf-8")


def _summary_section(view: RunView) -> str:
    metrics = view.summary.get("metrics", {})
    parts = ["<h2>Summary</h2>"]
    if view.partial:
        parts.append('<p class="problems">The run is not finished (no summary.json): figures from the '
                     f"{len(view.rows)} rows found so far.</p>")
    counts = view.summary["videos"]
    if counts.get("remaining") is None or counts.get("in_run") is None:
        left = "how many remain is not known (the run's total is recorded only in its summary)"
    else:
        left = f"{_e(counts['remaining'])} remaining of {_e(counts['in_run'])}"
    parts.append(f"<p>Videos: {_e(counts.get('evaluated', 0))} evaluated, {_e(counts.get('failed', 0))} failed, "
                 f"{left}. Per-video means weigh every video alike.</p>")
    try:
        table = summary_table_rows(view.summary)
    except (KeyError, TypeError, AttributeError):
        table = []
        view.problems.append("the summary lacks figures it should hold; summary table left out")
    lines = ['<table class="summary" id="summary"><thead><tr><th>metric</th><th>value</th>'
             "<th>copy the photo</th><th>protocol</th></tr></thead><tbody>"]
    for name, value, protocol in table:
        entry = metrics.get(name) if isinstance(metrics.get(name), dict) else {}
        baseline = _number(entry.get("copy_photo"))
        lines.append(f'<tr data-metric="{_e(name)}"><td>{_e(name)}</td><td class="num">{_e(value)}</td>'
                     f'<td class="num">{_e(_shown(baseline)) if baseline is not None else ""}</td><td>{_e(protocol)}</td></tr>')
    lines.append("</tbody></table>")
    return "\n".join(parts + lines)


def _settings_section(view: RunView) -> str:
    config, command = view.config, view.command
    items = [("model", config.get("model")), ("model fingerprint", config.get("model_fingerprint")),
             ("data", config.get("data")), ("split", config.get("split")), ("driven by", config.get("drive")),
             ("seed", config.get("seed")), ("steps", config.get("steps") or "pipeline default"),
             ("command line", command.get("command", "not recorded")),
             ("signgen version", command.get("signgen_version", "not recorded")),
             ("started", command.get("started", "not recorded"))]
    items += [(key, value) for key, value in config.items()
              if key not in {"model", "model_fingerprint", "data", "split", "drive", "seed", "steps"}]
    rows = "".join(f"<tr><td>{_e(key)}</td><td>{_e(value)}</td></tr>" for key, value in items)
    return f'<h2>Run settings</h2><table class="settings" id="settings">{rows}</table>'


def _worst_section(view: RunView) -> str:
    scored = sorted((row for row in view.rows if row.get("hand_ssim") is not None), key=lambda row: row["hand_ssim"])
    if not scored:
        return "<h2>Worst videos by hand-SSIM</h2><p class=\"muted\">no video has a hand-SSIM</p>"
    items = "".join(f'<li><a href="#" class="worst" data-name="{_e(row["name"])}">{_e(row["name"])}</a> '
                    f'hand-SSIM {_shown(row["hand_ssim"])}, SSIM {_shown(row["ssim_rgb"])}: {_e(row["glosses"])}</li>'
                    for row in scored[:WORST_COUNT])
    return f'<h2>Worst {min(WORST_COUNT, len(scored))} videos by hand-SSIM</h2><ol id="worst">{items}</ol>'


def _video_row(index: int, row: dict) -> str:
    data = {"index": index, "name": row["name"], "split": row["split"], "glosses": row["glosses"],
            "signer": row["signer"], "status": row["status"]}
    data.update({key: "" if row[key] is None else repr(row[key]) for key, _ in VIDEO_COLUMNS})
    attributes = " ".join(f'data-{key.replace("_", "-")}="{_e(value)}"' for key, value in data.items())
    if row["video"] is not None:
        video = (f'<video class="row-video" controls muted loop playsinline preload="metadata" '
                 f'src="{_e(row["video"])}"></video>')
    elif row["status"] == "ok":
        video = '<span class="problems">video missing</span>'
    else:
        video = f'<span class="problems">failed: {_e(row["reason"])}</span>'
    figures = "".join(f'<td class="num">{_shown(row[key])}</td>' for key, _ in VIDEO_COLUMNS)
    read = "" if row["read_glosses"] is None else f'<br><span class="muted">read: {_e(row["read_glosses"])}</span>'
    cls = "video" if row["status"] == "ok" else "video failed"
    return (f'<tr class="{cls}" {attributes}><td><button class="open" type="button">open</button> {_e(row["name"])}'
            f'<br><span class="muted">{_e(row["split"])}, signer {_e(row["signer"])}</span></td>'
            f'<td>{_e(row["glosses"])}{read}</td><td>{video}</td>{figures}</tr>')


def _videos_section(view: RunView) -> str:
    splits = sorted({row["split"] for row in view.rows})
    # the "all" option's value is no split's: rows of older runs have the split "" (shown as "no split")
    options = f'<option value="{ALL_SPLITS}">all splits</option>' + "".join(
        f'<option value="{_e(s)}">{_e(s) if s else "(no split)"}</option>' for s in splits)
    headings = "".join(f'<th class="sortable" data-key="{_e(_camel(key))}" title="sort by {_e(title)}">{_e(title)}</th>'
                       for key, title in VIDEO_COLUMNS)
    body = "\n".join(_video_row(index, row) for index, row in enumerate(view.rows))
    return ("<h2>Videos</h2><p class=\"muted\">reference | render | driving pose. Click a heading to sort, "
            "<em>open</em> for the per-frame plots.</p>"
            f'<div class="controls"><label>split <select id="split-filter">{options}</select></label> '
            '<label>name or gloss <input id="text-filter" type="search"></label></div>'
            '<table id="videos"><thead><tr><th class="sortable" data-key="name">video</th><th>glosses</th>'
            f"<th>side by side</th>{headings}</tr></thead><tbody>\n{body}\n</tbody></table>")


def _camel(key: str) -> str:
    """The ``dataset`` name of a ``data-`` attribute (``hand_ssim`` -> ``handSsim``)."""
    head, *rest = key.split("_")
    return head + "".join(part.capitalize() for part in rest)


def _problems_section(view: RunView) -> str:
    failed = [f"{f.get('name')}: {f.get('reason')}" for f in view.summary["failed"] if isinstance(f, dict)]
    items = view.problems + [f"failed: {line}" for line in failed]
    if not items:
        return ""
    return '<h2>Problems</h2><ul class="problems" id="problems">' + "".join(f"<li>{_e(i)}</li>" for i in items) + "</ul>"


def render_html(view: RunView) -> str:
    """The whole page, script, style and figures inline."""
    run = view.config
    data = {"rows": [{key: row[key] for key in ("name", "glosses", "per_frame", "hand_ssim", "ssim_rgb")}
                     for row in view.rows]}
    # no "<" at all inside the script element: "</script" and "<!--" cannot end or bend it
    payload = json.dumps(data, ensure_ascii=True, allow_nan=False).replace("<", "\\u003c")
    sections = [_summary_section(view), _worst_section(view), _videos_section(view), _settings_section(view)]
    problems = _problems_section(view)  # after the sections: the summary's own problems are named too
    title = f"signgen eval: {run.get('split', '?')} split, driven by {run.get('drive', '?')}"
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        '<meta http-equiv="Content-Security-Policy" content="default-src \'self\' \'unsafe-inline\'; '
        "media-src 'self'; img-src 'self' data:\">",
        f"<title>{_e(title)}</title><style>{_asset('report.css')}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
        problems, *sections,
        f'<script type="application/json" id="report-data">{payload}</script>',
        f"<script>{_asset('report.js')}</script>", "</body></html>", ""])


def write_report(run_dir: str | Path) -> Path:
    """Read the run folder and write ``RUN_DIR/report.html``; returns its path."""
    view = load_run(run_dir)
    page = render_html(view)
    path = Path(run_dir) / REPORT_NAME
    try:
        with atomic_output(path) as tmp:
            tmp.write_text(page, encoding="utf-8")
    except OSError as error:  # a read-only run folder, a full disk
        raise SigngenError(f"cannot write {path}: {error.strerror or first_line(error)}") from None
    return path


def record_command(run_dir: Path, command: str | None) -> None:
    """Store the command line and signgen version of this start of the run (``command.json``)."""
    import datetime

    from signgen import __version__

    record = {"command": command or "the Python API (signgen.evaluation.run.run_evaluation)", "signgen_version": __version__,
              "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
    with atomic_output(Path(run_dir) / COMMAND_NAME) as tmp:
        tmp.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
