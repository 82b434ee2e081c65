"""Fixtures of the backend tests."""

from __future__ import annotations

from collections.abc import Iterator

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
