"""Explain: one forward pass gives the prediction, the activations and the CAM; methods and figures read it.

=================  ==========================================================================================
``engine``         the one engine: :class:`~engine.Explainer` captures a layer set (the paper's five stages,
                   or every 4-D layer for the explorer) and computes the CAM in one place; one result type
                   (:class:`~engine.Explanation`); :func:`~engine.iter_explanations` batches many images;
                   the explorer's :class:`~engine.ActivationCache`
``methods``        the saliency methods registry (:data:`~methods.METHODS`: ``cam``, ``gradcam``,
                   ``gradcam++``, ``random``) that faithfulness, the explorer and the CLI all read
``figures``        the paper's case figure (panels a-g) and the colouring helpers the explorer shares
``cases``          which image and model set each of the paper's Figures 4-11 shows (``cases.json``),
                   ground-truth masks aligned with a figure's input
=================  ==========================================================================================

This package must stay light to import (no TensorFlow at import time of ``methods``): the command line
reads the registry to build its ``--help``.
"""
