"""The explorer, for people: every layer of every model set, interactively.

=================  ==========================================================================================
``widgets``        :class:`~widgets.Explorer` (ipywidgets): model set, image, layer, channels, saliency method
``serve``          what the page shows (:func:`~serve.explorer_view`), Voila and JupyterLab servers on
                   127.0.0.1 (:func:`~serve.serve`, ``densenet-interp app``)
=================  ==========================================================================================
"""
