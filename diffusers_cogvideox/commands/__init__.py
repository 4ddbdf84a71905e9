"""Sub-commands of the ``cogvideox`` CLI; each module defines ``add_arguments(parser)`` and ``run(args) -> int``."""
