"""`python -m catalog serve`: the read-only catalog web page (127.0.0.1 unless told otherwise)."""

from __future__ import annotations

import argparse
import os

from catalog.commands.common import add_common, root_of


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("serve", help="serve the catalog web page")
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1; any other needs --token)")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument(
        "--token",
        default=os.environ.get("LIPFORGE_CATALOG_TOKEN"),
        help="bearer token clients must send (default $LIPFORGE_CATALOG_TOKEN); required off loopback",
    )
    add_common(parser, json_flag=False)


def main(args: argparse.Namespace) -> int:
    import uvicorn

    from catalog.web.app import create_app, require_token_off_loopback

    require_token_off_loopback(args.host, args.token)
    app = create_app(root_of(args), token=args.token)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0
