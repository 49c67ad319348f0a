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


def pytest_xdist_make_scheduler(config, log):
    """`make test` runs two pytest-xdist workers with `--dist loadfile` (each test file whole on one worker, its
    module fixtures set up once). The chapter tests and the book's share one scope: the book builds from the
    chapters that `run_chapter` executed, once per worker, so on two workers they would run twice. That scope is
    about half of the whole run's time (every quick chapter, then the book built from them), so it goes to a worker
    first and the other worker takes the other files one by one meanwhile; xdist's own order (most tests first)
    started it fifth, and the run took 14 min where its tests' times add up to 10 on each worker."""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    big = "chapters and the book"

    class ChaptersWithTheBook(LoadFileScheduling):
        def _split_scope(self, nodeid):
            scope = super()._split_scope(nodeid)
            return big if scope.endswith(("test_chapters.py", "test_book.py")) else scope

        def _assign_work_unit(self, node):
            if big in self.workqueue:  # the longest unit first (the work queue is an OrderedDict)
                self.workqueue.move_to_end(big, last=False)
            super()._assign_work_unit(node)

    return ChaptersWithTheBook(config, log)
