"""densenet_interp: train DenseNet on MURA (or the offline phantom MURA) and open it up.

Reference implementation of "Making DenseNet Interpretable: a case study in clinical radiology":
layer-wise activations and class activation maps (CAM) for DenseNet abnormality detection on
musculoskeletal radiographs. Folders by pipeline stage; data flows one way, top to bottom (a module imports
only from its own stage or the ones above it in this table; ``tests/test_architecture.py`` checks it):

=================  ==========================================================================================
``errors``         :class:`UserFacingError` and kinds: problems the user can fix, reported as one line
``paths``          :class:`Layout` (every artefact name), :class:`RunFiles`, atomic writers
``profiles``       the run profiles (tiny, mini, paper), the four model sets, the body parts
``phantom/``       the offline phantom MURA: synthetic radiographs in MURA's layout, with ground truth
``data/``          MURA reader, image I/O, frames, decode cache and input pipeline, exploration
``models/``        DenseNet builders, the initial-weights policy, stand-in pre-training, training, inference
``explain/``       the explanation engine, the saliency methods registry, case figures, the paper's cases
``evaluate/``      metrics and tables, statistics, localisation measures, the paper's claims, faithfulness
``app/``           the explorer's widgets and serving it (Voila, JupyterLab)
``experiments/``   controlled experiments beyond the paper (the text-legend shortcut)
``commands/``      the ``densenet-interp`` subcommands, one module each; ``cli`` registers them
=================  ==========================================================================================
"""

import os

__version__ = "0.1.0"

# The same bits on other processors: oneDNN picks its kernels by the instruction set it finds at run time
# (AVX-512 kernels give other weights than AVX2 ones), so it is held to AVX2, which every x86-64 processor of
# the last decade has, unless the user says otherwise. Set before TensorFlow starts; see models/runtime.py.
os.environ.setdefault("ONEDNN_MAX_CPU_ISA", "AVX2")
