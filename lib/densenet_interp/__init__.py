"""densenet_interp: train DenseNet on MURA (or the offline phantom MURA) and open it up.

Reference implementation of "Making DenseNet Interpretable: a case study in clinical radiology":
layer-wise activations and class activation maps (CAM) for DenseNet abnormality detection on
musculoskeletal radiographs. Modules have one job each; see README.md for the map.
"""

__version__ = "0.1.0"
