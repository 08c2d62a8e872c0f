"""``reason4rec`` and ``python -m reason4rec``: ``reason4rec serve --bundle PATH`` serves a
bundle over HTTP (:mod:`reason4rec.service`); anything else is ``kedro run`` with its options.
"""
import sys
from pathlib import Path
from typing import Any


def main(*args, **kwargs) -> Any:
    if sys.argv[1:2] == ["serve"] and not args:
        from reason4rec.service import main as serve

        return serve(sys.argv[2:])

    from kedro.framework.cli.utils import find_run_command
    from kedro.framework.project import configure_project

    package_name = Path(__file__).parent.name
    configure_project(package_name)

    interactive = hasattr(sys, "ps1")
    kwargs["standalone_mode"] = not interactive

    run = find_run_command(package_name)
    return run(*args, **kwargs)


if __name__ == "__main__":
    main()
