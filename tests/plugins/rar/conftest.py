"""One torch thread: these tests run tiny models, where thread start-up dominates (and the
test machine's CPU is shared)."""

import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
