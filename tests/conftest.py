import os

import torch

# Under pytest-xdist each worker gets one thread, so two workers share the two cores.
if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)
