"""Back-translation scores: how well glosses read from a video match the glosses it was
meant to show. Word error rate (Levenshtein distance over gloss tokens) and BLEU-4 over
glosses, both corpus-level (pooled counts, not means of per-video scores); glosses are
compared case-insensitively. Pure Python: ``signgen eval``, the recogniser's training
and the benchmarks share it (jiwer and sacrebleu are not dependencies)."""

from __future__ import annotations

import math
from collections import Counter
from typing import Sequence

MAX_ORDER = 4


def _key(gloss: str) -> str:
    return gloss.strip().upper()


def edit_distance(reference: Sequence[str], hypothesis: Sequence[str]) -> int:
    """Substitutions + deletions + insertions that turn ``hypothesis`` into ``reference``."""
    reference, hypothesis = [_key(g) for g in reference], [_key(g) for g in hypothesis]
    previous = list(range(len(hypothesis) + 1))
    for i, ref in enumerate(reference, 1):
        current = [i]
        for j, hyp in enumerate(hypothesis, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ref != hyp)))
        previous = current
    return previous[-1]


def corpus_wer(references: Sequence[Sequence[str]], hypotheses: Sequence[Sequence[str]]) -> float | None:
    """Edits over all videos divided by the reference glosses over all videos (a share;
    may exceed 1 when much is inserted); None without reference glosses."""
    if len(references) != len(hypotheses):
        raise ValueError("as many hypotheses as references are needed")
    words = sum(len(r) for r in references)
    if words == 0:
        return None
    return sum(edit_distance(r, h) for r, h in zip(references, hypotheses)) / words


def ngram_counts(glosses: Sequence[str], order: int) -> Counter:
    keys = [_key(g) for g in glosses]
    return Counter(tuple(keys[i: i + order]) for i in range(len(keys) - order + 1))


def bleu_statistics(reference: Sequence[str], hypothesis: Sequence[str]) -> dict:
    """Per video: clipped n-gram matches and hypothesis n-grams for n = 1..4, and the two
    lengths; these add up over videos into :func:`bleu_from_statistics`."""
    matches, totals = [], []
    for order in range(1, MAX_ORDER + 1):
        hyp, ref = ngram_counts(hypothesis, order), ngram_counts(reference, order)
        matches.append(sum(min(count, ref[gram]) for gram, count in hyp.items()))
        totals.append(sum(hyp.values()))
    return {"matches": matches, "totals": totals, "hypothesis_length": len(hypothesis), "reference_length": len(reference)}


def bleu_from_statistics(statistics: Sequence[dict]) -> float | None:
    """Corpus BLEU-4 (Papineni et al. 2002: geometric mean of the clipped 1- to 4-gram
    precisions, uniform weights, brevity penalty; no smoothing) in [0, 1]; None without
    reference glosses."""
    reference_length = sum(s["reference_length"] for s in statistics)
    if reference_length == 0:
        return None
    hypothesis_length = sum(s["hypothesis_length"] for s in statistics)
    matches = [sum(s["matches"][n] for s in statistics) for n in range(MAX_ORDER)]
    totals = [sum(s["totals"][n] for s in statistics) for n in range(MAX_ORDER)]
    if hypothesis_length == 0 or min(matches) == 0:
        return 0.0
    log_precision = sum(math.log(m / t) for m, t in zip(matches, totals)) / MAX_ORDER
    brevity = min(0.0, 1.0 - reference_length / hypothesis_length)
    return math.exp(log_precision + brevity)


def corpus_bleu(references: Sequence[Sequence[str]], hypotheses: Sequence[Sequence[str]]) -> float | None:
    return bleu_from_statistics([bleu_statistics(r, h) for r, h in zip(references, hypotheses)])


def reading_row(reference: Sequence[str], hypothesis: Sequence[str]) -> dict:
    """One video's reading: the glosses read, the edits against the reference and the
    BLEU statistics, all that a summary pools."""
    return {"glosses": list(hypothesis), "edits": edit_distance(reference, hypothesis), "reference_length": len(reference),
            "wer": edit_distance(reference, hypothesis) / len(reference) if reference else None,
            "bleu": bleu_statistics(reference, hypothesis)}


def pool_readings(rows: Sequence[dict]) -> dict:
    """Corpus WER and BLEU-4 of :func:`reading_row` dicts, with the counts they rest on."""
    words = sum(r["reference_length"] for r in rows)
    return {"wer": (sum(r["edits"] for r in rows) / words) if words else None,
            "bleu4": bleu_from_statistics([r["bleu"] for r in rows]), "videos": len(rows), "reference_glosses": words}


def readability_ratio(generated_wer: float | None, reference_wer: float | None) -> float | None:
    """The headline figure: the word accuracy (1 - WER, at least 0) read from generated
    videos over the one read from the ground-truth videos. 1: as readable as the ground
    truth; 0: nothing read right. None where the ground truth reads as nothing right."""
    if generated_wer is None or reference_wer is None:
        return None
    reference_accuracy = max(0.0, 1.0 - reference_wer)
    if reference_accuracy == 0:
        return None
    return max(0.0, 1.0 - generated_wer) / reference_accuracy
