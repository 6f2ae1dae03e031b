"""Gloss-to-pose benchmark: DTW-MJE of the learned model against the mean pose and the
oracle (the true lexicon clips stitched), on test sentences whose gloss order never occurs
in training.

    signgen data synth --out /tmp/synthsign --signers 4 --videos 500 --seed 0
    python benchmarks/bench_g2p.py --data /tmp/synthsign --out /tmp/g2p-bench --splits test test_unseen

Trains ``--config`` (default configs/g2p-tiny.yaml) on the corpus's train split into
``--out`` (or evaluates an existing model folder with ``--model``), then scores each
eligible test sentence (normalised space, shoulder widths; see signgen/dtw.py):

- model:  the trained model, its own predicted durations
- mean:   the training corpus's mean pose, held for the reference's length
- oracle: ``signgen.poses.stitch.glosses_to_pose`` of the sentence's glosses

DTW-MJE is pooled over aligned joints (the SLRTP evaluator's corpus mean). Motion is the
mean frame-to-frame hand displacement (shoulder widths per frame) relative to the
reference's: near 1 means no collapse, near 0 a frozen mean pose. Where the oracle has
exactly the reference's length (SynthSign), its spans are the true gloss boundaries, and
the mean absolute boundary error of the aligner (on the reference) and of the duration
predictor (scaled to the reference length) is reported in frames. Runs on one CPU thread
unless ``--threads`` says otherwise (shared machines: one thread beats two contended).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from signgen.poses.dtw import corpus_dtw_mje, dtw_alignment
from signgen.poses import skeleton

HANDS = np.r_[skeleton.LEFT_HAND, skeleton.RIGHT_HAND]


def hand_motion(xy: np.ndarray, present: np.ndarray) -> float:
    """Mean frame-to-frame displacement of the hand points present in both frames."""
    both = present[1:, HANDS] & present[:-1, HANDS]
    steps = np.linalg.norm(np.diff(xy[:, HANDS], axis=0), axis=-1)
    return float(steps[both].mean()) if both.any() else 0.0


def boundary_error(durations, spans) -> float:
    """Mean |predicted - true| end frame of each gloss but the last."""
    ends = np.cumsum(durations)[:-1]
    true_ends = np.array([span.end for span in spans[:-1]])
    return float(np.abs(ends - true_ends).mean()) if len(true_ends) else 0.0


def evaluate(model, examples, log=print) -> dict:
    """Score the model, the mean pose and the oracle on ``examples`` (training_g2p.Example)."""
    from signgen.models.g2p import durations_from_log, monotonic_alignment
    from signgen.poses.holistic import pose_arrays
    from signgen.poses.stitch import stitch_with_spans
    from signgen.poses.transform import normalize
    from signgen.training.g2p import ExampleDataset, collate

    alignments = {"model": [], "mean": [], "oracle": []}
    motion = {"model": [], "mean": [], "oracle": [], "reference": []}
    lengths = {"model": [], "oracle": []}
    aligner_errors, predictor_errors = [], []
    mean_pose = model.mean_pose.cpu().numpy()
    dataset = ExampleDataset(examples, model)
    for index, example in enumerate(examples):
        reference, present = example.xy, example.present
        frames = len(reference)
        predicted, predicted_confidence = model.generate(example.glosses)
        oracle_pose, spans = stitch_with_spans(example.glosses)
        oracle, oracle_confidence = pose_arrays(normalize(oracle_pose))
        held = np.repeat(mean_pose[None], frames, axis=0)
        # DTW: the model's and the mean pose's coordinates all count (a point the model
        # calls invisible still has a position); the oracle's missing points are missing.
        # Motion: each side's visible points, as for the reference.
        candidates = {"model": (predicted, None, predicted_confidence > 0),
                      "mean": (held, None, np.ones(held.shape[:2], bool)),
                      "oracle": (oracle, oracle_confidence, oracle_confidence > 0)}
        for name, (xy, confidence, visible) in candidates.items():
            alignments[name].append(dtw_alignment(xy, reference, confidence, present))
            motion[name].append(hand_motion(xy, visible))
        motion["reference"].append(hand_motion(reference, present))
        lengths["model"].append(len(predicted) / frames)
        lengths["oracle"].append(len(oracle) / frames)
        if len(oracle) == frames and len(spans) == len(example.glosses):
            batch = collate([dataset[index]])
            with torch.no_grad():
                log_probs = model.alignment_log_probs(batch["gloss_ids"], batch["gloss_mask"], batch["poses"],
                                                      batch["present"], batch["frame_mask"], batch["log_prior"])
                aligned = monotonic_alignment(log_probs, batch["frame_mask"], batch["gloss_mask"])[0].numpy()
                log_durations = model(batch["gloss_ids"], batch["gloss_mask"])[3]
            predicted_durations = durations_from_log(log_durations, batch["gloss_mask"])[0].numpy().astype(float)
            aligner_errors.append(boundary_error(aligned, spans))
            predictor_errors.append(boundary_error(predicted_durations * frames / predicted_durations.sum(), spans))
    reference_motion = float(np.mean(motion["reference"]))
    rows = {}
    for name in ("model", "mean", "oracle"):
        rows[name] = {
            "dtw_mje": corpus_dtw_mje(alignments[name]),
            "dtw_mje_sentence_mean": float(np.mean([a.mje for a in alignments[name]])),
            "hand_motion": float(np.mean(motion[name])),
            "hand_motion_ratio": float(np.mean(motion[name])) / reference_motion,
            "length_ratio": float(np.mean(lengths[name])) if name in lengths else 1.0,
        }
    return {"sentences": len(examples), "reference_hand_motion": reference_motion, "rows": rows,
            "aligner_boundary_error_frames": float(np.mean(aligner_errors)) if aligner_errors else None,
            "predictor_boundary_error_frames": float(np.mean(predictor_errors)) if predictor_errors else None,
            "boundary_sentences": len(aligner_errors)}


def markdown(result: dict) -> str:
    lines = ["| prediction | DTW-MJE (pooled) | DTW-MJE (sentence mean) | hand motion / reference | length / reference |",
             "|---|---|---|---|---|"]
    for name, label in (("model", "learned g2p model"), ("mean", "mean pose (a)"), ("oracle", "oracle: true clips stitched (b)")):
        row = result["rows"][name]
        lines.append(f"| {label} | {row['dtw_mje']:.4f} | {row['dtw_mje_sentence_mean']:.4f} | "
                     f"{row['hand_motion_ratio']:.2f} | {row['length_ratio']:.2f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="PHOENIX-layout corpus (SynthSign)")
    parser.add_argument("--out", help="folder to train the model into (ignored with --model)")
    parser.add_argument("--model", help="evaluate this trained model folder instead of training one")
    parser.add_argument("--config", default=str(Path(__file__).resolve().parents[1] / "configs" / "g2p-tiny.yaml"))
    parser.add_argument("--splits", nargs="+", default=["test"], help="test splits to score (default: test)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", help="also write the result as JSON here")
    args = parser.parse_args(argv)
    if not args.model and not args.out:
        parser.error("give --out (train a model) or --model (evaluate one)")
    torch.set_num_threads(args.threads)

    from signgen.corpora.samplers import gloss_pose_pairs
    from signgen.models.g2p import load_model
    from signgen.config import load_g2p_config
    from signgen.training.g2p import prepare_examples, train_g2p

    started = time.time()
    train = prepare_examples(gloss_pose_pairs(args.data, "train"))
    seen_orders = {tuple(e.glosses) for e in train}
    test = [e for split in args.splits for e in prepare_examples(gloss_pose_pairs(args.data, split))]
    unseen = [e for e in test if tuple(e.glosses) not in seen_orders]
    seen_bigrams = {pair for e in train for pair in zip(e.glosses, e.glosses[1:])}
    test_bigrams = [pair for e in unseen for pair in zip(e.glosses, e.glosses[1:])]
    print(f"{len(train)} training sentences; {len(unseen)} of {len(test)} test sentences have a gloss order "
          f"never seen in training ({np.mean([p not in seen_bigrams for p in test_bigrams]):.0%} of their gloss "
          f"bigrams are unseen too)", file=sys.stderr)
    if args.model:
        model = load_model(args.model)
    else:
        train_started = time.time()
        model = train_g2p(train, args.out, load_g2p_config(args.config))
        print(f"trained in {time.time() - train_started:.0f} s", file=sys.stderr)
    result = evaluate(model.eval(), unseen)
    result.update(config=args.config, splits=args.splits, train_sentences=len(train), test_sentences=len(test),
                  seconds=round(time.time() - started))
    print(markdown(result))
    print(f"\nreference hand motion {result['reference_hand_motion']:.4f} shoulder widths per frame")
    if result["boundary_sentences"]:
        print(f"gloss boundaries vs the stitcher's true spans ({result['boundary_sentences']} sentences): aligner "
              f"{result['aligner_boundary_error_frames']:.2f} frames, duration predictor "
              f"{result['predictor_boundary_error_frames']:.2f} frames")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
