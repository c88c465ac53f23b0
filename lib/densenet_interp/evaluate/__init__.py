"""Evaluate: numbers and verdicts from predictions and maps. Measures take maps in and give numbers out.

=================  ==========================================================================================
``metrics``        accuracy, Cohen's kappa, AUROC...; the paper's Table 1 and the extended tables
``stats``          the ONE patient bootstrap (resampling draws, intervals, paired differences) every table uses,
                   and its crossing with training seeds (``resampled_means``, ``pool_seeds``)
``measures``       one map against ground-truth regions: mass shares, chance, enrichment, pointing game
``localisation``   those measures over a model set's validation images; summaries, Markdown, plot
``claims``         the paper's qualitative claims, each given a computed verdict
``seeds``          Table 1, its comparisons and the claims over training seeds, pooled over seeds and patients
``faithfulness``   every registered saliency method against CAM and against the model (deletion, insertion)
``case_report``    the "what this run shows" paragraph of a case figure
``detectors``      the metal and frame detectors scored on the phantom's ground truth: precision and recall
``plots``          ROC curves, confusion matrices, saving figures
=================  ==========================================================================================
"""
