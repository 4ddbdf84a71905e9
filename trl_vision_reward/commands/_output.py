"""The ``--output-dir`` of the reward commands under the output policy of :mod:`diffusers_cogvideox.outputs`."""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from typing import Any


def claim_output_dir(args: argparse.Namespace, command: str, inputs: Iterable[Any] = ()) -> Any:
    """Claim ``args.output_dir`` for ``command`` once the inputs are read: a folder with someone else's files, or
    holding an input, is refused; an earlier run of ``command`` is replaced only with ``--overwrite``."""
    from diffusers_cogvideox.outputs import OutputFolder

    return OutputFolder.claim(
        args.output_dir,
        command,
        inputs=[p for p in inputs if isinstance(p, str)],
        overwrite=args.overwrite,
        flag="--output-dir",
    )
