"""``densenet-interp app [voila|lab] [--port N]``: serve the explorer on 127.0.0.1 until Ctrl-C.

``voila`` (the default, ``make app``) serves ``notebooks/90_explorer.ipynb`` as a web app with its code hidden,
showing the models ``make reproduce`` trained for the profile; ``lab`` (``make lab``) starts JupyterLab.
Servers only ever listen on 127.0.0.1; see :mod:`densenet_interp.app.serve`.
"""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "app",
        help="serve the explorer as a web app (Voila) or JupyterLab on 127.0.0.1",
        description=__doc__.split("\n\n")[1].replace("\n", " "),
    )
    p.add_argument(
        "server",
        nargs="?",
        choices=["voila", "lab"],
        default="voila",
        help="voila: the app, code hidden (default); lab: JupyterLab",
    )
    p.add_argument("--port", type=int, default=None, help="default: 8866 (voila) / 8888 (lab) if free")
    return p


def run(args: argparse.Namespace) -> int:
    from ..app.serve import serve

    return serve(args.server, args.port)
