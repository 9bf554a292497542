"""``python -m nimbleops``: where the C++ API is, for build systems (pybind11's convention).

``--includedir`` prints the headers' directory, ``--cmakedir`` the CMake package config's
directory (``-Dnimbleops_DIR=$(python -m nimbleops --cmakedir)``), ``--version`` the version.
"""
from __future__ import annotations

import argparse
import sys
from typing import List, Optional

import nimbleops


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nimbleops", description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--includedir", action="store_true", help="print the C++ headers' directory")
    group.add_argument("--cmakedir", action="store_true", help="print the CMake package config's directory")
    group.add_argument("--version", action="store_true", help="print the version")
    args = parser.parse_args(argv)
    if args.includedir:
        print(nimbleops.get_include())
    elif args.cmakedir:
        print(nimbleops.get_cmake_dir())
    else:
        print(nimbleops.__version__)
    return 0


if __name__ == "__main__":
    sys.exit(main())
