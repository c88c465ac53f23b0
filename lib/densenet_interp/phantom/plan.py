"""The study plan of a phantom dataset: which studies exist, with MURA-v1.1's counts, numbering and order.

Counts per body part, split and label are the real MURA-v1.1 Table 2 times ``scale``, rounded half up, at
least :data:`MIN_STUDIES` per cell. Studies are grouped into patient/body-part pairs of 1-4 studies numbered
``study1..studyN`` (as in MURA, numbering restarts for each body part); some patients appear under several
body parts. Train patients are numbered from 00001 in order of first appearance, valid patients continue
after the last train patient. Rows are grouped by body part in the order of the real CSVs. Images per study
follow the real distribution.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..profiles import BODY_PARTS

SPLITS = ("train", "valid")
MIN_STUDIES = 3

# real MURA-v1.1 study counts: part -> (train normal, train abnormal, valid normal, valid abnormal)
TABLE2: dict[str, tuple[int, int, int, int]] = {
    "XR_ELBOW": (1094, 660, 92, 66),
    "XR_FINGER": (1280, 655, 92, 83),
    "XR_FOREARM": (590, 287, 69, 64),
    "XR_HAND": (1497, 521, 101, 66),
    "XR_HUMERUS": (321, 271, 68, 67),
    "XR_SHOULDER": (1364, 1457, 99, 95),
    "XR_WRIST": (2134, 1326, 140, 97),
}
# the order in which body parts appear in the real index CSVs
CSV_PART_ORDER = {
    "train": ("XR_SHOULDER", "XR_HUMERUS", "XR_FINGER", "XR_ELBOW", "XR_WRIST", "XR_FOREARM", "XR_HAND"),
    "valid": ("XR_WRIST", "XR_FOREARM", "XR_HAND", "XR_HUMERUS", "XR_SHOULDER", "XR_ELBOW", "XR_FINGER"),
}
# real number of studies with k images (all 14,656 public studies)
IMAGES_PER_STUDY = {1: 1232, 2: 4145, 3: 6983, 4: 2022, 5: 227, 6: 28, 7: 14, 8: 3, 10: 1, 11: 1}
# studies per patient/body-part pair (MURA: 96 % single; raised so that small scales have some multi-study pairs)
STUDIES_PER_PAIR = {1: 0.90, 2: 0.075, 3: 0.018, 4: 0.007}
SHARED_PATIENT_FRACTION = 0.12  # pairs whose patient also appears under another body part


@dataclass(frozen=True)
class PlannedStudy:
    """One study of the plan; ``entropy`` seeds everything rendered for it."""

    split: str
    part: str
    patient: int
    study: int
    label: int
    n_images: int

    @property
    def directory(self) -> str:
        """The study's relative path as in the CSVs, with its trailing slash."""
        suffix = "positive" if self.label else "negative"
        return f"MURA-v1.1/{self.split}/{self.part}/patient{self.patient:05d}/study{self.study}_{suffix}/"

    def image_path(self, k: int) -> str:
        return f"{self.directory}image{k}.png"

    def entropy(self, seed: int) -> tuple[int, ...]:
        return (seed, SPLITS.index(self.split), BODY_PARTS.index(self.part), self.patient, self.study)


def cell_counts(scale: float) -> dict[str, dict[str, tuple[int, int]]]:
    """``{split: {part: (normal, abnormal)}}``: real counts x ``scale``, rounded half up, at least 3."""

    def count(real: int) -> int:
        return max(MIN_STUDIES, math.floor(real * scale + 0.5))

    return {
        split: {part: (count(TABLE2[part][2 * s]), count(TABLE2[part][2 * s + 1])) for part in BODY_PARTS}
        for s, split in enumerate(SPLITS)
    }


def _pair_sizes(n: int, rng: np.random.Generator) -> list[int]:
    """Split ``n`` studies into patient/body-part pairs of 1-4 studies; at least one multi-study pair if n >= 6."""
    sizes_p = np.array(list(STUDIES_PER_PAIR.values()))
    sizes = []
    left = n
    while left > 0:
        k = min(int(rng.choice(list(STUDIES_PER_PAIR), p=sizes_p / sizes_p.sum())), left)
        sizes.append(k)
        left -= k
    if n >= 6 and max(sizes) == 1:
        sizes = [2] + sizes[2:]
    return sizes


def plan_studies(scale: float, seed: int) -> list[PlannedStudy]:
    """Every study of a phantom dataset, in CSV row order (train first, then valid)."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 1_000_003]))
    counts = cell_counts(scale)
    studies: list[PlannedStudy] = []
    next_patient = 1
    for split in SPLITS:
        # pairs per part: (pair key, list of labels)
        pairs: dict[str, list[list[int]]] = {}
        for part in BODY_PARTS:
            n0, n1 = counts[split][part]
            labels = rng.permutation([0] * n0 + [1] * n1).tolist()
            sizes = _pair_sizes(n0 + n1, rng)
            starts = np.cumsum([0, *sizes[:-1]])
            pairs[part] = [labels[s : s + k] for s, k in zip(starts, sizes, strict=True)]
        owners = _assign_patients(pairs, rng)  # (part, pair index) -> patient key
        ids: dict[int, int] = {}
        for part in CSV_PART_ORDER[split]:
            for i in rng.permutation(len(pairs[part])):
                key = owners[(part, int(i))]
                if key not in ids:
                    ids[key] = next_patient
                    next_patient += 1
        for part in CSV_PART_ORDER[split]:
            order = sorted(range(len(pairs[part])), key=lambda i, p=part: ids[owners[(p, i)]])
            for i in order:
                for number, label in enumerate(pairs[part][i], start=1):
                    n_images = _draw_images(rng)
                    studies.append(
                        PlannedStudy(split, part, ids[owners[(part, i)]], number, int(label), n_images)
                    )
    return studies


def _assign_patients(
    pairs: dict[str, list[list[int]]], rng: np.random.Generator
) -> dict[tuple[str, int], int]:
    """Give each pair a patient key; about 12 % of pairs share the patient of a pair of another body part."""
    owners = {}
    key = 0
    for part in BODY_PARTS:
        for i in range(len(pairs[part])):
            owners[(part, i)] = key
            key += 1
    parts_of = {k: {p} for (p, _), k in owners.items()}
    all_pairs = list(owners)
    n_shared = max(1, round(SHARED_PATIENT_FRACTION * len(all_pairs)))
    for idx in rng.permutation(len(all_pairs))[:n_shared]:
        part, i = all_pairs[int(idx)]
        j = int(rng.integers(len(all_pairs)))
        other = owners[all_pairs[j]]
        if all_pairs[j][0] == part or part in parts_of[other] or len(parts_of[owners[(part, i)]]) > 1:
            continue
        parts_of[other].add(part)
        owners[(part, i)] = other
    return owners


def _draw_images(rng: np.random.Generator) -> int:
    counts = np.array(list(IMAGES_PER_STUDY.values()), float)
    return int(rng.choice(list(IMAGES_PER_STUDY), p=counts / counts.sum()))
