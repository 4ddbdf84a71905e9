"""Sub-commands of ``vr-datasets``; each module defines ``add_arguments(parser)`` and ``run(args) -> int``."""
