"""``report.html`` of ``signgen eval``: written by a real (tiny) run, opened over file:// in
a real browser (Debian's chromium through Playwright), and rebuilt by ``signgen eval report``
from an interrupted, damaged folder.

The run: 4 SynthSign videos of 8 frames (every split's videos moved into ``test``, so the
embedded readers read them back), the session's random-weight 32 x 24 pipeline, 1 step,
no FID, no pose fidelity. Set SIGNGEN_SCREENSHOTS=DIR to keep a screenshot of the page.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest

from signgen.cli.main import main
from signgen.corpora.phoenix import annotation_path, frame_file_name, frame_folder, pose_path
from signgen.evaluation.html_report import REPORT_NAME, load_run, render_html
from signgen.poses.holistic import pose_arrays, pose_from_arrays, reduce_to_178
from signgen.poses.io import read_pose, write_pose

FRAMES = 8
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def corpus(synthsign_corpus, tmp_path_factory) -> Path:
    """The session's SynthSign corpus with every video in ``test``, cut to 8 frames (its
    manifest kept: a SynthSign corpus, read back by the embedded readers)."""
    root = tmp_path_factory.mktemp("report_corpus") / "corpus"
    root.mkdir()
    shutil.copy(synthsign_corpus / "synthsign.json", root / "synthsign.json")
    rows = ["name|video|start|end|speaker|orth|translation"]
    for split in ("train", "dev", "test", "test_unseen"):
        if not annotation_path(synthsign_corpus, split).is_file():
            continue
        for line in annotation_path(synthsign_corpus, split).read_text(encoding="utf-8").splitlines()[1:]:
            name = line.split("|")[0]
            frame_folder(root, "test", name).mkdir(parents=True)
            for index in range(FRAMES):
                shutil.copy(frame_folder(synthsign_corpus, split, name) / frame_file_name(index),
                            frame_folder(root, "test", name) / frame_file_name(index))
            xy, confidence = pose_arrays(reduce_to_178(read_pose(pose_path(synthsign_corpus, split, name))))
            pose_path(root, "test", name).parent.mkdir(parents=True, exist_ok=True)
            write_pose(pose_from_arrays(xy[:FRAMES], confidence[:FRAMES], 25, 210, 260), pose_path(root, "test", name))
            rows.append(line)
    annotation_path(root, "test").parent.mkdir(parents=True)
    annotation_path(root, "test").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def run_dir(corpus, tiny_pipelines, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report_run") / "run"
    code = main(["eval", "--data", str(corpus), "--split", "test", "--model", str(tiny_pipelines["frame_only"]),
                 "--out", str(out), "--steps", "1", "--no-progress", "--fid-frames-per-video", "0", "--no-pose-fidelity"])
    assert code == 0
    return out


def page_data(page_text: str) -> dict:
    found = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', page_text, re.S)
    return json.loads(found.group(1))


def per_video(run: Path) -> dict[str, dict]:
    lines = (run / "per_video.jsonl").read_text(encoding="utf-8").splitlines()
    return {row["name"]: row for row in map(json.loads, lines)}


# ------------------------------------------------------------------ the page, read as text


def test_eval_writes_a_self_contained_report_whose_figures_are_the_summarys(run_dir):
    page = (run_dir / REPORT_NAME).read_text(encoding="utf-8")
    summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    rows = per_video(run_dir)
    assert len(rows) == 4
    # nothing from the network: no URL with a scheme or a protocol-relative one in any src or href
    assert not re.search(r'(src|href)\s*=\s*"(?![#]|side_by_side/)', page), "a link leaves the run folder"
    assert "//" not in "".join(re.findall(r'(?:src|href)="([^"]*)"', page))
    sources = re.findall(r'<video[^>]*src="([^"]+)"', page)
    assert sorted(sources) == sorted(f"side_by_side/{name}.mp4" for name in rows)
    assert all((run_dir / source).is_file() for source in sources)
    # each summary figure as summary.json has it, its copy-the-photo baseline and protocol beside it
    for metric in ("ssim_rgb", "hand_ssim", "tde", "psnr"):
        entry = summary["metrics"][metric]
        cells = re.search(rf'<tr data-metric="{metric}"><td>{metric}</td><td class="num">([^<]*)</td>'
                          r'<td class="num">([^<]*)</td><td>([^<]+)</td>', page)
        assert cells, metric
        assert cells.group(1) == f"{entry['value']:.4f}"
        assert cells.group(2) == f"{entry['copy_photo']:.4f}"
    assert "ground truth" in page and "readability (video reader)" in page  # read back by the embedded readers
    # per-video figures and series as the rows hold them
    data = page_data(page)
    for entry in data["rows"]:
        row = rows[entry["name"]]
        assert entry["hand_ssim"] == pytest.approx(row["hand_ssim"])
        assert len(entry["per_frame"]["ssim_rgb"]) == FRAMES and len(entry["per_frame"]["tde"]) == FRAMES - 1
        assert sum(entry["per_frame"]["ssim_rgb"]) / FRAMES == pytest.approx(row["ssim_rgb"], abs=1e-4)
    worst = re.findall(r'class="worst" data-name="([^"]+)"', page)
    assert worst == sorted(rows, key=lambda name: rows[name]["hand_ssim"])[:5]
    command = re.search(r"<td>command line</td><td>([^<]*)</td>", page).group(1)
    assert command.startswith("signgen eval --data ") and "--steps 1" in command and "--no-pose-fidelity" in command
    assert re.search(r"<td>signgen version</td><td>\d+\.\d+", page)


def test_report_of_an_interrupted_and_damaged_run_names_what_is_missing(run_dir, tmp_path, run_cli, cli_error_line):
    damaged = tmp_path / "run"
    shutil.copytree(run_dir, damaged)
    for name in ("summary.json", "summary.md", "summary.png", "per_video.jsonl", REPORT_NAME):
        (damaged / name).unlink()
    gone = sorted(p.stem for p in (damaged / "side_by_side").glob("*.mp4"))[0]
    (damaged / "side_by_side" / f"{gone}.mp4").unlink()
    shard = damaged / "shards" / "rank-0.jsonl"
    lines = shard.read_text(encoding="utf-8").splitlines()
    hostile = json.loads(lines[1])
    hostile["glosses"] = '</script><script>alert(1)</script>'
    hostile["ssim_rgb"] = "NaN"  # a figure that is not a number: shown as n/a, never a traceback
    shard.write_text("\n".join([lines[0], json.dumps(hostile), "{not json", '["a list"]', *lines[2:]]) + "\n",
                     encoding="utf-8")
    before = sorted(p.relative_to(damaged) for p in damaged.rglob("*"))

    code, out, err = run_cli("eval", "report", damaged)
    assert code == 0, err
    page = (damaged / REPORT_NAME).read_text(encoding="utf-8")
    assert sorted(p.relative_to(damaged) for p in damaged.rglob("*")) == sorted([*before, Path(REPORT_NAME)])
    assert f"video missing: side_by_side/{gone}.mp4" in page
    assert "shards/rank-0.jsonl line 3: not a JSON row" in page
    assert "shards/rank-0.jsonl line 4: not a row of signgen eval" in page
    assert "The run is not finished" in page
    assert "how many remain is not known" in page and "0 remaining" not in page
    assert page.count("<script") == 2 and "<script>alert" not in page  # the hostile gloss stays text
    assert "&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in page
    view = load_run(damaged)
    assert {row["name"] for row in view.rows} == {json.loads(line)["name"] for line in lines}
    assert next(row for row in view.rows if row["name"] == hostile["name"])["ssim_rgb"] is None
    render_html(view)  # renders again from the same view


def test_report_of_a_folder_that_is_no_run_is_one_line_and_writes_nothing(tmp_path, run_cli, cli_error_line):
    (tmp_path / "run.json").write_text("{broken", encoding="utf-8")
    code, _, err = run_cli("eval", "report", tmp_path)
    assert code == 2
    assert "not a signgen eval run folder" in cli_error_line(err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.json"]
    code, _, err = run_cli("eval", "report", tmp_path / "absent")
    assert code == 2 and "run folder not found" in cli_error_line(err)


# ------------------------------------------------------------------ the page, in a browser


def test_report_in_a_browser_plays_every_video_sorts_filters_and_plots(run_dir, browser):
    rows = per_video(run_dir)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    problems = []
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("requestfailed", lambda request: problems.append(f"failed: {request.url}"))
    page.add_init_script("""(() => {  // counts the page's timeupdate listeners
        const add = EventTarget.prototype.addEventListener;
        window.timeupdateListeners = 0;
        EventTarget.prototype.addEventListener = function (type, ...rest) {
            if (type === 'timeupdate') window.timeupdateListeners += 1;
            return add.call(this, type, ...rest);
        };
    })()""")
    page.goto((run_dir / REPORT_NAME).as_uri())
    states = page.evaluate("""() => Promise.all(Array.from(document.querySelectorAll('video')).map(v =>
        new Promise(done => {
            const report = () => done({src: v.getAttribute('src'), state: v.readyState, error: v.error && v.error.code});
            if (v.readyState >= 3) return report();
            v.addEventListener('canplay', report);
            v.addEventListener('error', report);
            setTimeout(report, 10000);
            v.preload = 'auto'; v.load();
        })))""")
    assert len(states) == len(rows)
    assert all(s["state"] >= 3 and s["error"] is None for s in states), states

    def order():
        return page.eval_on_selector_all("#videos tr.video", "rows => rows.map(r => r.dataset.name)")

    # each heading sorts the rows by its figure, ascending, and a second click reverses them
    for key, metric in (("ssimRgb", "ssim_rgb"), ("handSsim", "hand_ssim"), ("tde", "tde")):
        values = {name: rows[name][metric] for name in rows}
        assert len(set(values.values())) == len(rows), values  # distinct: one right order
        ascending = sorted(rows, key=values.get)
        page.click(f'#videos th[data-key="{key}"]')
        assert order() == ascending, (metric, values)
        shown = page.eval_on_selector_all("#videos tr.video", f"rows => rows.map(r => Number(r.dataset.{key}))")
        assert shown == pytest.approx(sorted(values.values()))
        page.click(f'#videos th[data-key="{key}"]')
        assert order() == ascending[::-1], (metric, values)

    first = order()[0]
    page.fill("#text-filter", first)
    assert page.eval_on_selector_all("#videos tr.video", "rows => rows.filter(r => !r.hidden).length") == 1
    page.fill("#text-filter", "")

    assert page.locator("svg.plot").count() == 0
    page.click(f'#videos tr.video[data-name="{first}"] button.open')
    index = page.get_attribute(f'#videos tr.video[data-name="{first}"]', "data-index")
    plots = page.locator(f"#detail-{index} svg.plot")
    assert plots.count() == 3
    assert page.locator("svg.plot path").first.get_attribute("d").count("L") == FRAMES - 1
    # closed and reopened, the row's plots still follow its video (one listener, the new plots)
    button = f'#videos tr.video[data-name="{first}"] button.open'
    page.click(button)
    page.click(button)
    cursors = page.evaluate("""name => new Promise(done => {
        const video = document.querySelector(`#videos tr.video[data-name="${CSS.escape(name)}"] video`);
        video.addEventListener('seeked', () => setTimeout(() => done(Array.from(
            document.querySelectorAll('tr.detail svg.plot line.cursor')).map(c => Number(c.getAttribute('x1')))), 50));
        video.pause();
        video.currentTime = video.duration / 2;
    })""", first)
    assert len(cursors) == 3 and all(x > 40 for x in cursors), cursors
    assert page.evaluate("window.timeupdateListeners") == 1
    if os.environ.get("SIGNGEN_SCREENSHOTS"):
        page.screenshot(path=str(Path(os.environ["SIGNGEN_SCREENSHOTS"]) / "eval_report_test.png"), full_page=True)
    page.close()
    assert problems == []


def test_split_filter_shows_the_rows_of_the_chosen_split_only(run_dir, tmp_path, browser, run_cli):
    """One row moved to ``dev`` and one given an older run's empty split, report rebuilt."""
    run = tmp_path / "run"
    shutil.copytree(run_dir, run, ignore=shutil.ignore_patterns("*.mp4"))
    lines = (run / "per_video.jsonl").read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line) for line in lines]
    rows[0]["split"], rows[1]["split"] = "dev", ""
    (run / "per_video.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    code, _, err = run_cli("eval", "report", run)
    assert code == 0, err
    page = browser.new_page()
    page.goto((run / REPORT_NAME).as_uri())

    def shown():
        return sorted(page.eval_on_selector_all("#videos tr.video", "rows => rows.filter(r => !r.hidden).map(r => r.dataset.name)"))

    everything = sorted(row["name"] for row in rows)
    assert shown() == everything  # "all splits" is chosen at first
    page.select_option("#split-filter", "test")
    assert shown() == sorted(row["name"] for row in rows[2:])
    page.select_option("#split-filter", "dev")
    assert shown() == [rows[0]["name"]]
    page.select_option("#split-filter", label="(no split)")  # the older run's "": not "all splits"
    assert shown() == [rows[1]["name"]]
    page.select_option("#split-filter", label="all splits")
    assert shown() == everything
    page.close()


def minimal_run(run_dir: Path, tmp_path: Path) -> Path:
    """The run folder's JSON files only (no videos: each named missing in the problems)."""
    run = tmp_path / "run"
    run.mkdir()
    for name in ("run.json", "summary.json", "per_video.jsonl"):
        shutil.copy(run_dir / name, run / name)
    return run


def test_report_of_a_summary_of_wrong_types_names_it_and_renders(run_dir, tmp_path, run_cli):
    run = minimal_run(run_dir, tmp_path)
    summary = json.loads((run / "summary.json").read_text(encoding="utf-8"))
    summary["videos"], summary["failed"] = [4, 0], "none"
    (run / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
    code, _, err = run_cli("eval", "report", run)
    assert code == 0, err
    page = (run / REPORT_NAME).read_text(encoding="utf-8")
    assert "summary.json: &quot;videos&quot; is not an object" in page
    assert "summary.json: &quot;failed&quot; is not a list" in page
    assert "Videos: 4 evaluated, 0 failed, how many remain is not known" in page


def test_report_into_a_read_only_run_folder_is_one_line(run_dir, tmp_path, run_cli, cli_error_line, monkeypatch):
    run = minimal_run(run_dir, tmp_path)
    if os.geteuid() == 0:  # root writes into a read-only folder: the write fails as it would there
        import signgen.evaluation.html_report as html_report

        def refused(path):
            raise PermissionError(13, "Permission denied", str(path))

        monkeypatch.setattr(html_report, "atomic_output", refused)
    run.chmod(0o555)
    try:
        code, _, err = run_cli("eval", "report", run)
    finally:
        run.chmod(0o755)
    assert code == 2
    # atomic_output refuses a folder it may not write before trying (as a user); the write's own
    # PermissionError (as root, patched; or an ACL that access() does not see) is caught too
    assert cli_error_line(err) in (f"signgen: error: cannot write {run / REPORT_NAME}: Permission denied",
                                   f"signgen: error: output folder is not writable: {run}")
    assert not (run / REPORT_NAME).exists()
