"""``python -m shotfill`` is the ``shotfill`` command (and the worker: ``python -m shotfill run job.json``)."""
import sys

from .cli import main

sys.exit(main())
