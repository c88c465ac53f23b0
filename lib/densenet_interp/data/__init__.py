"""Data: from a MURA-layout folder (real MURA or the phantom) to model-size arrays and batches.

=================  ==========================================================================================
``mura``           read and check the four index CSVs into image and study tables; Table 2; file checks
``images``         robust radiograph reading (8/16-bit, RGB, palette...), square resize, model input
``dicom``          DICOM recognised by content and rendered for display (modality LUT, VOI LUT or first window,
                   MONOCHROME1 inverted); called by ``images``
``frames``         detect and crop the rectangular frame some radiographs carry (Figures 10 and 11)
``metal``          find metal hardware by rule (no model): chooses the hardware case figures on real MURA
``pipeline``       the decode-once cache (one ``uint8`` array per dataset and size) and the tf.data batches
                   with the paper's augmentation (lateral flips, rotations up to 30 degrees)
``exploration``    notebook 00's pictures: Figure 1 panels, sample grid, distributions
=================  ==========================================================================================
"""
