"""Phantom MURA: synthetic musculoskeletal radiographs in MURA-v1.1's exact layout, with ground truth.

Real MURA cannot be downloaded offline, so the project renders its own: every image is an X-ray projection of a
simple 3-D upper limb (bones as unions of ellipsoids, cylinders and tapering ends, each with a dense cortical
shell and lighter marrow; soft tissue; metal), computed with exact ray path lengths and Beer-Lambert
attenuation, then exposed, blurred and made noisy like a digital radiograph. Abnormal studies carry the paper's
kinds (fracture, hardware, degenerative joint, misalignment) and confounders are burned in as in MURA (text
legends, side markers, rectangular frames, inverted polarity). Modules, one job each:

==================  =========================================================================================
``solids``          unit ball/cylinder/cube under affine maps, cut by planes; exact chord lengths, outlines
``anatomy``         bones, joints, soft tissue, metal, lesion marks of one limb; moving chains of bones
``bones``           long-bone and round-bone shapes from a few measurements
``hand`` / ``arm``  the limb: carpals, rays and hand soft tissue / forearm, humerus, shoulder girdle, thorax
``views``           cameras per body part and view (PA, lateral, oblique, AP, ...), posing, projection
``render``          attenuation, exposure (histogram window), blur and noise
``lesions``         fracture, degenerative joint, misalignment; the kind mix per body part
``hardware``        screws, plates, wires/nails, intramedullary nails, prosthesis, anchors, foreign bodies
``confounders``     text legends, side markers, frames (with polygons)
``knobs``           :class:`DifficultyKnobs` and the legend-label correlation
``radiograph``      one study: all random choices in a fixed order, all views, annotations
``plan``            study counts (Table 2 x scale), patients, numbering, CSV order, images per study
``dataset``         :func:`generate_dataset` (the CLI's ``phantom`` command)
``masks``           :func:`load_annotations`, :func:`masks_for`, :func:`resize_mask`; :data:`REGIONS`
``cases``           the paper's named cases (:data:`CASES`, :func:`render_case`, :func:`write_cases`)
==================  =========================================================================================

Output (``generate_dataset(out_dir, scale, seed=0, long_side=512, legend_correlation=None, workers=None,
knobs=None) -> Path``): ``out_dir/MURA-v1.1/{train,valid}/XR_<PART>/patientNNNNN/study<N>_<positive|negative>/
image<k>.png`` (8-bit grayscale), the four headerless index CSVs in the real format, ``phantom_annotations.json``
(one entry per image path: body part, split, view, label, rendered kind, lesion info, inverted, shape, and
polygons ``lesion``, ``legend``, ``frame``, ``anatomy`` in pixels of the saved image) and
``phantom_manifest.json`` (parameters, knobs, version).

Difficulty knobs (:class:`DifficultyKnobs`, defaults in brackets), chosen so that a DenseNet lands in the
paper's regime (image-level accuracy about 0.75-0.9) rather than at 0.99 or at chance. Calibrated with the
``mini`` profile's all-extremity model (compact DenseNet-BC, 128 px; ``benchmarks/phantom_difficulty.py``
repeats a setting): with lesion scale 1.5, hidden views 0.25 and subtle fraction 0.3 it reached 0.67 (0.69 at
lesion scale 2.5): it found hardware but almost no fractures, and half of the abnormal-labelled images showed
nothing or nearly nothing, so it underfit even the training set. Lesion scale 3, hidden views 0.1, subtle
fraction 0.15 (and 24 epochs) put it at 0.765 and the wrist and finger models at 0.76-0.81. Fractures stay the
hardest kind at 128 px; hidden views, subtle studies and label noise keep the ceiling below 1:

- ``lesion_scale`` [3.0]: multiplies every lesion size, at 1: fracture gap 1.2-2.5 mm, displacement
  0.2-0.7 bone radii, angulation 4-18 deg; joint narrowing 55-90 % of the joint space (at most 92 %) and
  osteophytes; subluxation 0.3-0.8 articular radii and 15-40 deg; scaphoid shift 2.5-4.5 mm (constants in
  ``lesions``). At 3 a fracture is a displaced, angulated break and a misalignment a frank (sub)luxation,
  which the small model can see at 128 px; the real-MURA path has no such knob.
- ``subtle_fraction`` [0.15] of abnormal studies are drawn at ``subtle_scale`` [0.45] of that magnitude.
- ``hidden_view_probability`` [0.1]: an image of an abnormal study does not show its lesion (as in MURA,
  where the abnormality is visible on some views only); at least one image per abnormal study shows it.
  ``hardware_hidden_probability`` [0.05] for hardware.
- ``label_noise`` [0.02]: studies rendered against their label.
- ``noise_level`` [1.0]: quantum and electronic noise; ``anatomy_variation`` [1.0]: every anatomical and
  positioning jitter.
- Confounder rates: ``legend_base_rate`` [0.7], ``marker_probability`` [0.6] (label-independent "L"/"R"),
  ``frame_probability`` [0.15], ``inverted_probability`` [0.05].

Legend correlation: with base rate ``b`` and ``legend_correlation`` ``c`` in [0, 1] (default 0.2),
``P(text legend | abnormal) = b + c (1 - b)`` and ``P(text legend | normal) = b (1 - c)`` (defaults: 0.76 and
0.56). ``c = 0`` makes the legend independent of the label; ``c = 1`` makes it a perfect shortcut. The label
used is the CSV label (after label noise), i.e. what a model is trained on.
"""

from __future__ import annotations

from .cases import CASES, FIGURE1_CASES, render_case, write_cases
from .dataset import generate_dataset
from .knobs import DEFAULT_LEGEND_CORRELATION, DifficultyKnobs, legend_probabilities
from .lesions import KIND_MIX, KINDS
from .masks import load_annotations, masks_for

__all__ = [
    "CASES",
    "DEFAULT_LEGEND_CORRELATION",
    "FIGURE1_CASES",
    "KINDS",
    "KIND_MIX",
    "DifficultyKnobs",
    "generate_dataset",
    "legend_probabilities",
    "load_annotations",
    "masks_for",
    "render_case",
    "write_cases",
]
