"""The ``densenet-interp`` subcommands: one module per subcommand, each with ``add_parser`` and ``run``.

A command module imports nothing heavy at module level (no TensorFlow, no pandas), so building the parser for
``--help`` stays instant; ``run(args)`` imports what the work needs and returns an exit status. Problems the
user can fix raise :class:`~densenet_interp.errors.UserFacingError`; :mod:`densenet_interp.cli` (the one
place that does it) turns them into one line on stderr and exit status 2.

============  =====================================================================================
``profile``   print a run profile (tiny, mini, paper) or one field of it (Make reads fields)
``stats``     the study distribution (the paper's Table 2) of a MURA-layout folder; ``--check-files``
``phantom``   generate the offline phantom MURA
``cases``     render the paper's named cases (Figures 1, 4-11) as phantom radiographs with masks
``pretrain``  the stand-in pre-training of a profile's backbone (offline replacement for ImageNet)
``train``     train one of the paper's four model sets (resumes if interrupted)
``explain``   case figure (CAM and layer-wise activations) and arrays for radiograph files
``shortcut``  the text-legend shortcut experiment (beyond the paper; phantom profiles)
``seeds``     evaluate a training seed, or pool all seeds into Table 1 and the claims (``make seeds``)
``app``       serve the explorer as a web app (Voila) or JupyterLab on 127.0.0.1
``compare``   two results folders file by file, byte for byte (the check of ``make verify-results``)
``step``      run one pipeline step: a label line, the lines that matter, the rest in a log (what Make calls)
============  =====================================================================================

Adding a command: a module here with ``add_parser(subparsers)`` (returns its parser) and ``run(args)``,
plus its name in :data:`densenet_interp.cli.COMMANDS`.
"""
