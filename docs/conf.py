"""Sphinx configuration: the pages are Markdown (MyST).  CI builds them with
warnings as errors (sphinx-build -W) and runs their >>> examples as
doctests (pytest --doctest-glob)."""
import os
import sys

sys.path.insert(0, os.path.abspath(".."))

project = "relu_ufunc"
author = "the relu_ufunc developers"
extensions = ["myst_parser"]
source_suffix = {".md": "markdown"}
master_doc = "index"
exclude_patterns = ["_build"]
myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence"]
html_theme = "alabaster"
html_static_path = []
# The result plots live beside the benchmarks that make them.
suppress_warnings = []
