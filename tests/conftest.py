import atexit
import os
import shutil
import tempfile

import torch

# Exports cached by the inference tests go to a folder of this test session, never to the
# user's cache (subprocesses inherit it).
os.environ["MIXDEPTH_CACHE_DIR"] = tempfile.mkdtemp(prefix="mixdepth-test-cache-")
atexit.register(shutil.rmtree, os.environ["MIXDEPTH_CACHE_DIR"], ignore_errors=True)

# Under pytest-xdist each worker gets one thread, so two workers share the two cores.
if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)
