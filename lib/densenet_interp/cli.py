"""The ``densenet-interp`` command line: thin subcommands over the library modules.

Each subcommand's handler lives in the module that does the work (``module:function`` below) and is imported
only when that subcommand runs, so ``--help`` is instant and never imports TensorFlow. Handlers take the parsed
arguments and return an exit status. Problems the user can fix (:class:`UserFacingError`) end in one line on
stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from .errors import UserFacingError
from .profiles import MODEL_SETS, PROFILES


def _add_stats(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "stats",
        help="print the study distribution (the paper's Table 2) of a MURA-layout folder",
        description="Read the four index CSVs of a MURA-v1.1 folder (or its parent) and print the number of "
        "normal and abnormal studies per body part and split, in the layout of the paper's Table 2.",
    )
    p.add_argument("mura_dir", help="the MURA-v1.1 folder or the folder that contains it")
    p.add_argument("--csv", metavar="OUT", help="also write the table as CSV to OUT")
    p.add_argument(
        "--check-files",
        action="store_true",
        help="also open every listed image and report missing or undecodable ones by path",
    )
    p.set_defaults(handler="densenet_interp.mura:stats_command")


def _add_phantom(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "phantom",
        help="generate the offline phantom MURA dataset (synthetic radiographs in MURA's exact layout)",
        description="Write a synthetic dataset in the MURA-v1.1 layout and CSV format, with ground-truth "
        "annotations (lesion, text legend and frame masks). Study counts follow the real Table 2 x SCALE.",
    )
    p.add_argument("out_dir", help="folder to create; MURA-v1.1/ is written inside it")
    p.add_argument("--scale", type=float, default=0.1, help="fraction of the real study counts (default 0.1)")
    p.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives the same bytes")
    p.add_argument("--long-side", type=int, default=512, help="long side of the images in pixels (<= 512)")
    p.add_argument(
        "--legend-correlation",
        type=float,
        default=None,
        help="how strongly text legends correlate with the label, 0 (none) to 1 (always); default: mild",
    )
    p.add_argument("--workers", type=int, default=None, help="processes to use (default: all cores)")
    p.set_defaults(handler="densenet_interp.phantom:phantom_command")


def _add_cases(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "cases",
        help="render the paper's named cases (Figures 1 and 4-11) as phantom radiographs with masks",
    )
    p.add_argument("out_dir", help="folder to write the case PNGs and their annotation JSON into")
    p.add_argument("--long-side", type=int, default=512, help="long side of the images in pixels")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(handler="densenet_interp.phantom:cases_command")


def _add_pretrain(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "pretrain",
        help="pre-train the backbone on the offline stand-in source task (stands in for ImageNet)",
    )
    p.add_argument("--profile", choices=sorted(PROFILES), default=None, help="default: $PROFILE or mini")
    p.add_argument(
        "--out", help="weights file to write (default: results/<profile>/models/standin_pretrain/)"
    )
    p.set_defaults(handler="densenet_interp.standin:pretrain_command")


def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train one of the paper's four model sets (resumes if interrupted)")
    p.add_argument("model_set", choices=list(MODEL_SETS))
    p.add_argument("--profile", choices=sorted(PROFILES), default=None, help="default: $PROFILE or mini")
    p.add_argument("--mura-dir", help="MURA-layout folder (default: the profile's phantom dataset)")
    p.add_argument("--out", help="model folder (default: results/<profile>/models/<model_set>/)")
    p.set_defaults(handler="densenet_interp.training:train_command")


def _add_explain(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "explain",
        help="write the case figure (CAM and layer-wise activations) for one or more radiographs",
        description="For each IMAGE, one forward pass gives the prediction, the CAM and the activations at "
        "the initial convolution and the end of dense blocks 1-4; writes <stem>.png (and <stem>.npz).",
    )
    p.add_argument("images", nargs="+", metavar="IMAGE", help="radiograph files (PNG, JPEG, ...)")
    p.add_argument("--model", required=True, help="a model.keras trained by this project")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--save-arrays", action="store_true", help="also write <stem>.npz with the arrays")
    p.add_argument("--crop-frame", action="store_true", help="detect a rectangular frame and crop inside it")
    p.add_argument("--top-k", type=int, default=16, help="channels per activation panel (default 16)")
    p.add_argument("--rank", choices=("mean", "max"), default="mean", help="how channels are ranked")
    p.set_defaults(handler="densenet_interp.explain:explain_command")


def _add_profile(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("profile", help="print a run profile (tiny, mini, paper) or one of its fields")
    p.add_argument("name", choices=sorted(PROFILES))
    p.add_argument("field", nargs="?", help="print only this field (e.g. image_size)")
    p.set_defaults(handler="densenet_interp.profiles:profile_command")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="densenet-interp",
        description="Train DenseNet on MURA (or the offline phantom MURA) and explain it with layer-wise "
        "activations and class activation maps.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (_add_profile, _add_stats, _add_phantom, _add_cases, _add_pretrain, _add_train, _add_explain):
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    module_name, func_name = args.handler.split(":")
    try:
        handler = getattr(importlib.import_module(module_name), func_name)
        return int(handler(args) or 0)
    except UserFacingError as exc:
        print(f"densenet-interp {args.command}: error: {exc.one_line()}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"densenet-interp {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
