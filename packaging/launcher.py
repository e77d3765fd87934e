"""Entry point of the frozen Forensic Workbench (PyInstaller one-folder bundle).

One executable, ``forensic-workbench``, serves every command (busybox style):

    forensic-workbench [gui] [FILE_OR_FOLDER ...]      # the desktop app (default)
    forensic-workbench analyze INPUTS --json OUT.json  # = forensic-analyze
    forensic-workbench report ...                      # = forensic-report
    forensic-gui / forensic-analyze / forensic-report  # symlinks in the bundle folder: dispatch on argv[0]
    forensic-workbench -m engine.report ...            # what the GUI runs as ``sys.executable -m engine.report``

Why one executable and not three: the three commands share the same ~5 GB of
libraries (torch, CUDA, Qt, FFmpeg); one PyInstaller ``Analysis`` of torch takes
most of the build time, and every executable of a one-folder bundle carries its
own copy of the Python archive. The GUI also starts the report writer as a
child process with ``sys.executable -m engine.report`` (so a crash in PDF
writing cannot take the GUI down); in a frozen app ``sys.executable`` is this
launcher, so it must understand ``-m``.

Also runs unfrozen (``python packaging/launcher.py analyze ...``) for debugging.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from pathlib import Path

#: subcommand -> module whose ``main(argv)`` runs it
COMMANDS = {"gui": "forensic_gui.app", "analyze": "engine.cli", "report": "engine.report"}
#: executable (symlink) name -> subcommand
ALIASES = {"forensic-gui": "gui", "forensic-analyze": "analyze", "forensic-report": "report",
           "forensic-workbench": None}

USAGE = """usage: forensic-workbench [gui] [FILE_OR_FOLDER ...]
       forensic-workbench analyze INPUTS --json OUT.json [options]   (= forensic-analyze)
       forensic-workbench report ...                                 (= forensic-report)
       forensic-workbench -m MODULE [ARGS ...]
       forensic-workbench --version
Each subcommand has its own --help."""


def _frozen_environment() -> None:
    """Settings a frozen app needs before the heavy imports."""
    if not getattr(sys, "frozen", False):
        return
    # numba (librosa) caches compiled functions; the bundle folder may be read-only (/opt)
    if "NUMBA_CACHE_DIR" not in os.environ:
        try:
            import platformdirs

            os.environ["NUMBA_CACHE_DIR"] = str(Path(platformdirs.user_cache_dir("forensic-workbench",
                                                                                   appauthor=False)) / "numba")
        except Exception:  # pragma: no cover - platformdirs is bundled
            pass


def _run_module_main(module: str, argv: list[str], prog: str) -> int:
    """``module.main`` with the argv convention of that module (the GUI wants argv[0])."""
    import importlib

    mod = importlib.import_module(module)
    if module == "forensic_gui.app":
        return int(mod.main([prog, *argv]) or 0)
    sys.argv = [prog, *argv]
    return int(mod.main(argv) or 0)


def main() -> int:
    multiprocessing.freeze_support()
    _frozen_environment()
    argv = list(sys.argv)
    name = Path(argv[0]).name
    if name.lower().endswith(".exe"):
        name = name[:-4]
    rest = argv[1:]

    cmd = ALIASES.get(name)
    if cmd is not None:  # invoked as forensic-gui / forensic-analyze / forensic-report
        return _run_module_main(COMMANDS[cmd], rest, name)

    if rest[:1] == ["-m"]:
        if len(rest) < 2:
            print("forensic-workbench: -m needs a module name", file=sys.stderr)
            return 2
        module, margs = rest[1], rest[2:]
        if module in COMMANDS.values():
            return _run_module_main(module, margs, module)
        import runpy

        sys.argv = [module, *margs]
        runpy.run_module(module, run_name="__main__", alter_sys=True)
        return 0
    if rest[:1] in (["-h"], ["--help"]):
        print(USAGE)
        return 0
    if rest[:1] == ["--version"]:
        from engine import __version__

        print(f"forensic-workbench {__version__}")
        return 0
    if rest and rest[0] in COMMANDS:
        return _run_module_main(COMMANDS[rest[0]], rest[1:], f"forensic-{rest[0]}")
    return _run_module_main(COMMANDS["gui"], rest, "forensic-gui")


if __name__ == "__main__":
    sys.exit(main())
