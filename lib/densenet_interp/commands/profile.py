"""``densenet-interp profile NAME [FIELD]``: print a run profile as JSON, or one field's value (for Make)."""

from __future__ import annotations

import argparse

from ..profiles import PROFILES


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "profile",
        help="print a run profile (tiny, mini, paper) or one of its fields",
        description="Print a run profile as JSON, or the value of one of its fields (the Makefile reads them).",
    )
    p.add_argument("name", choices=sorted(PROFILES), help="the profile")
    p.add_argument("field", nargs="?", help="print only this field (e.g. image_size)")
    return p


def run(args: argparse.Namespace) -> int:
    import json

    from ..errors import UserFacingError
    from ..profiles import get_profile

    values = get_profile(args.name).to_dict()
    if args.field is None:
        print(json.dumps(values, indent=2))
        return 0
    if args.field not in values:
        raise UserFacingError(f"unknown profile field {args.field!r}; expected one of {', '.join(values)}")
    print(values[args.field])
    return 0
