"""Sub-commands of the ``vision-reward`` CLI; each module defines ``add_arguments(parser)`` and ``run(args) -> int``."""
