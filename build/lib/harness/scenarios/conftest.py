"""Fixtures shared by the scenarios: the web protocols C2/C3, C1 and C8 run over."""

import pytest


@pytest.fixture(params=[pytest.param("http", marks=pytest.mark.http),
                        pytest.param("https", marks=pytest.mark.https)])
def web_protocol(request: pytest.FixtureRequest) -> str:
    return request.param

