"""Fixtures: the private Dovecot (from $POPWIRE_DOVECOT, or started for the session). Set
POPWIRE_REQUIRE_DOVECOT=1 to fail instead of skip when there is no Dovecot."""

import os
from typing import Iterator, Optional

import pytest

from dovecot import Dovecot, from_env_or_start

pytest_plugins = ["popwire.testing"]


@pytest.fixture(scope="session")
def dovecot_instance() -> Iterator[Optional[Dovecot]]:
    yield from from_env_or_start()


@pytest.fixture
def dovecot(dovecot_instance: Optional[Dovecot]) -> Dovecot:
    if dovecot_instance is None:
        if os.environ.get("POPWIRE_REQUIRE_DOVECOT") == "1":
            pytest.fail("Dovecot is required (POPWIRE_REQUIRE_DOVECOT=1) but could not be started")
        pytest.skip("no Dovecot here (install it with tests/install-deps.sh)")
    return dovecot_instance
