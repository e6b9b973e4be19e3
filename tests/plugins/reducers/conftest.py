import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # parity_cases

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "reducers"



@pytest.fixture(scope="session")
def timm():
    from zoo.compat.torchvision import import_timm

    try:
        return import_timm()
    except ModuleNotFoundError as exc:
        pytest.skip(str(exc))
