"""The ``shotfill`` command line: one argparse tree, one module per subcommand group.

=====================  ==========================================================
:mod:`.root`           the root parser and the dispatch behind one error boundary
:mod:`.common`         what the commands share: parser class, sinks, engine options
:mod:`.info`           ``info``, ``plan``: what a file holds, what an edit offers
:mod:`.generate`       ``extend``, ``bridge``, ``fill``, ``run``: the worker's jobs
:mod:`.publish`        ``publish``: results onto a new version of an edit
:mod:`.demo`           ``demo``: the main job on a sample edit
:mod:`.eval`           ``eval``: the quality harness
:mod:`.farm`           ``farm ...``: render-farm bundles
:mod:`.train`          ``train ...``: train the dit engine's models
:mod:`.install_host`   ``install-host``: register the panel with a host
:mod:`.engines`        ``engines``: the engines and memory modes
:mod:`.models`         ``models ...``: the pretrained model store
=====================  ==========================================================

Every generating command builds a :class:`~shotfill.job.JobSpec` and runs the
same worker pipeline that the panel and farm tasks run (``shotfill run``).

Exit codes: 0 done, 2 bad input, 3 cancelled, 1 internal error.
"""
from .root import build_parser, main

__all__ = ["build_parser", "main"]
