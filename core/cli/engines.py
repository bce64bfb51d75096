"""``shotfill engines``: the engines there are, and the GPU memory modes of the model engines."""
from __future__ import annotations

from ..errors import EXIT_OK


def add_parser(sub) -> None:
    """Add ``engines`` to the tree."""
    p = sub.add_parser("engines", help="list the engines and the memory modes")
    p.set_defaults(func=cmd_engines)


def cmd_engines(args) -> int:
    from ..engines import DEFAULT_ENGINE, PLANNED, available_engines

    for name, desc in available_engines().items():
        print(f"  {name:<10} {desc}" + (" (default)" if name == DEFAULT_ENGINE else ""))
    for name, desc in PLANNED.items():
        print(f"  {name:<10} {desc}")
    from ..engines.pretrained.base import MEMORY_MODES

    print("\n--memory modes (wan-vace, ltx):")
    for name, desc in MEMORY_MODES.items():
        print(f"  {name:<10} {desc}")
    return EXIT_OK
