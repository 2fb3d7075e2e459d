"""The harnesses are scripts for atheris, not modules for pytest.

``--doctest-modules`` would import every ``.py`` file here to look for doctests, and importing
a harness loads atheris into the test process; ``test_fuzz_harness.py`` runs each harness as
its own process instead.
"""

from __future__ import annotations

collect_ignore_glob = ["fuzz_*.py"]
