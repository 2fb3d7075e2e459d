"""The Java runtime Apache Kafka runs on, found and checked."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from streams.learning.errors import BrokerError


def require_java(minimum: int = 17) -> str:
    """The ``java`` executable, checked to be version ``minimum`` or newer."""
    home = os.environ.get("JAVA_HOME")
    java = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    if not java or not Path(java).exists():
        raise BrokerError(
            f"Java {minimum}+ is needed to run Apache Kafka and none was found;"
            " install a JDK (e.g. `apt-get install openjdk-17-jre-headless`) or set JAVA_HOME"
        )
    result = subprocess.run([java, "-version"], capture_output=True, text=True, check=False)
    match = re.search(r'version "(\d+)(?:\.(\d+))?', result.stderr + result.stdout)
    if match is None:
        raise BrokerError(f"could not read the version of {java}: {result.stderr.strip()}")
    major = int(match.group(1))
    if major == 1 and match.group(2):  # "1.8" style
        major = int(match.group(2))
    if major < minimum:
        raise BrokerError(f"Apache Kafka 4 needs Java {minimum}+, but {java} is Java {major}")
    return java
