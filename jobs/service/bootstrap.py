"""The first thing a submitted job runs, on the head: `PYTHON -m jobs.service.bootstrap ARGS` checks
that this interpreter can run landscape, then runs `landscape ARGS` in the same process.

The job's code travels with it (the runtime env's working_dir), its libraries do not: the head's
PYTHON (`landscape submit --python`, default `python` on the head's PATH) must have them. When it
lacks one the job fails with one line saying what to install where, instead of a traceback ending in
`No module named 'ray'`. Importing this module imports nothing but the standard library (and so do
`jobs/__init__.py` and `jobs/service/__init__.py`), and its syntax is old enough for any Python 3 to
reach the version check.
"""

import importlib
import os
import runpy
import sys

DEFAULT_PYTHON = "python"  # on the head's PATH: the Python deploy/local-cluster.sh puts first there
NEEDS = (3, 11)  # pyproject.toml's requires-python
# What `landscape run` imports before any work: (module, pip package). Missing ones are the usual trap.
MODULES = (("yaml", "pyyaml"), ("pydantic", "pydantic"), ("numpy", "numpy"), ("torch", "torch"),
           ("zarr", "zarr"), ("ray", "ray[default]"))
HOW = ("install the project there (pip install -e . with the head's Python, or in its image) "
       "or submit with --python /path/to/a/python/that/has/it")


def command(python=None):
    """The argv prefix of a job's entrypoint: the bootstrap under the given interpreter."""
    return [python or DEFAULT_PYTHON, "-m", "jobs.service.bootstrap"]


def missing():
    """None if this interpreter can run landscape, else one line saying what is missing and what to do."""
    where = "the job's Python {} (on {})".format(sys.executable or DEFAULT_PYTHON, os.uname().nodename)
    if sys.version_info[:2] < NEEDS:
        version = ".".join(map(str, sys.version_info[:3]))
        return "{} is Python {}; landscape needs {}.{} or newer: {}".format(where, version, NEEDS[0], NEEDS[1], HOW)
    for module, package in MODULES:
        try:
            importlib.import_module(module)
        except Exception as e:  # ImportError, or a library that is there but broken (a missing .so)
            why = (str(e).strip().splitlines() or [type(e).__name__])[0]
            return "{} cannot import {} ({}; pip package {}): {}".format(where, module, why, package, HOW)
    return None


def main(argv):
    line = missing()
    if line is not None:
        sys.stderr.write("landscape: error: {}\n".format(line))
        sys.stderr.flush()
        return 2
    sys.argv = ["landscape"] + list(argv)
    runpy.run_module("jobs.cli", run_name="__main__", alter_sys=True)  # exits with the command's status
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
