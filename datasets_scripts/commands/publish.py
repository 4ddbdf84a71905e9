"""``vr-datasets publish``: push a dataset folder (data/*.parquet + README.md card) to the Hub."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("folder", help="a folder written by build-vrdb, generate-score, pairs or convert")
    parser.add_argument("--repo-id", required=True, help="dataset repo, e.g. me/my-pairs")
    parser.add_argument("--private", action="store_true")
    parser.add_argument("--token", default=None)
    parser.add_argument(
        "--dry-run",
        metavar="DIR",
        default=None,
        help="upload nothing: write the files that would be committed under DIR/<repo-id>/",
    )


def run(args: argparse.Namespace) -> int:
    from datasets_scripts.publish import capture_uploads, publish_folder

    if args.dry_run:
        with capture_uploads(args.dry_run) as captured:
            publish_folder(args.folder, args.repo_id, private=args.private)
        files = sorted(captured.files.get(args.repo_id, {}))
        print(
            f"dry run: {len(files)} files would be committed to {args.repo_id}: {files} (written under {args.dry_run})"
        )
        return 0
    info = publish_folder(args.folder, args.repo_id, private=args.private, token=args.token)
    print(f"pushed {args.folder} to {args.repo_id}: {getattr(info, 'commit_url', info)}")
    return 0
