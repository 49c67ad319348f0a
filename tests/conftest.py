import os
import tempfile
from pathlib import Path

import pytest

# Chapters executed by the tests write data, checkpoints and compiled code into a fresh cache, so a green
# run never depends on what an earlier run left behind.
os.environ.setdefault("POSEKIT_CACHE", tempfile.mkdtemp(prefix="posekit-test-cache-"))
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")


@pytest.fixture(scope="session")
def run_chapter(tmp_path_factory):
    """Execute a chapter once per session (quick profile by default) and share the result between tests."""
    from tests.harness import execute

    base = tmp_path_factory.mktemp("chapters")
    done: dict = {}

    def run(nb: Path, profile: str = "quick"):
        key = (nb.name, profile)
        if key not in done:
            try:
                done[key] = (True, execute(nb, base / "executed" / profile, profile, base / "results"))
            except Exception as e:  # remembered, so a second test does not rerun a failing chapter
                done[key] = (False, e)
        ok, value = done[key]
        if not ok:
            raise value
        return value

    return run
