"""Controlled experiments beyond the paper, on the phantom where the answer is known.

=================  ==========================================================================================
``shortcut``       does the framework catch a model that reads the text legend instead of the wrist?
                   (``densenet-interp shortcut``, ``make shortcut``)
``seeds``          ``make seeds``: evaluate each training seed like the main run, pool all seeds into tables
                   (``densenet-interp seeds``)
=================  ==========================================================================================
"""
