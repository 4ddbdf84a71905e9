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
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="with --dry-run: replace what an earlier dry run wrote to DIR (nothing else is deleted)",
    )


def run(args: argparse.Namespace) -> int:
    from datasets_scripts.publish import LocalRepo, publish_folder

    if args.dry_run:
        from diffusers_cogvideox.outputs import OutputFolder

        folder = OutputFolder.claim(
            args.dry_run,
            "vr-datasets publish --dry-run",
            inputs=[args.folder],
            overwrite=args.overwrite,
            flag="--dry-run",
        )
        with folder:  # an earlier dry run is deleted once this one is written
            # the same upload code against a local repo: a repo id or path leaving DIR is refused
            local = LocalRepo(write=folder.write_bytes)
            publish_folder(args.folder, args.repo_id, private=args.private, api=local)
        files = sorted(local.files.get(args.repo_id, {}))
        print(
            f"dry run: {len(files)} files would be committed to {args.repo_id}: {files} (written under {args.dry_run})"
        )
        return 0
    info = publish_folder(args.folder, args.repo_id, private=args.private, token=args.token)
    print(f"pushed {args.folder} to {args.repo_id}: {getattr(info, 'commit_url', info)}")
    return 0
