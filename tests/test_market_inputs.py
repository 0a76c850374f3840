"""Bad market inputs: correlation matrices that are not positive semi-definite, conflicting
or asymmetric entries, each refused with one message (file, key, value, allowed).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from market_cases import market_book
from test_cli import ncrisk

from engine.errors import InputError
from engine.market_arrays import lower_markets
from engine.market_config import CopulaConfig, MarketsConfig

# ----------------------------------------------------------------------------- validation

NON_PSD = [[1.0, 0.9, 0.9, 0.0], [0.9, 1.0, -0.9, 0.0], [0.9, -0.9, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0]]


@pytest.mark.parametrize(
    "matrix, key, words",
    [
        (
            [[1.0, 0.5, 0, 0], [0.4, 1.0, 0, 0], [0, 0, 1.0, 0], [0, 0, 0, 1.0]],
            "markets.copula.correlation[0][1]",
            "symmetric",
        ),
        (
            [[1.0, 1.2, 0, 0], [1.2, 1.0, 0, 0], [0, 0, 1.0, 0], [0, 0, 0, 1.0]],
            "markets.copula.correlation[0][1]",
            "[-1, 1]",
        ),
        (
            [[1.0, 0, 0, 0], [0, 0.9, 0, 0], [0, 0, 1.0, 0], [0, 0, 0, 1.0]],
            "markets.copula.correlation[1][1]",
            "itself",
        ),
        (NON_PSD, "markets.copula.correlation", "positive semi-definite"),
    ],
)
def test_bad_correlation_matrix_is_rejected(
    matrix: list[list[float]], key: str, words: str
) -> None:
    """Not symmetric, |rho| > 1, a diagonal other than 1, and not PSD (eigenvalue of the
    example by numpy < 0): an InputError naming the key; never repaired."""
    if key == "markets.copula.correlation":
        assert np.linalg.eigvalsh(np.array(matrix)).min() < -0.1
    with pytest.raises(InputError) as info:
        CopulaConfig(correlation=matrix)
    assert info.value.key == key and words in info.value.allowed


def test_conflicting_within_type_correlation_is_rejected() -> None:
    """Three regions pairwise -0.9 cannot be (eigenvalue 1 - 2 x 0.9 < 0): the assembled
    factor matrix is checked when the markets are lowered."""
    book = market_book({"r1": {}, "r2": {}, "r3": {}})
    markets = MarketsConfig(copula=CopulaConfig(electricity_between_regions=-0.9))
    with pytest.raises(InputError) as info:
        lower_markets(book, markets, 12)
    assert info.value.key.startswith("markets.copula")
    assert "positive semi-definite" in info.value.allowed


def test_cli_rejects_an_asymmetric_correlation_override(tmp_path: Path) -> None:
    """Exit status 2, one message naming the entry, no traceback, nothing written."""
    matrix = "[[1.0,0.5,0.0,0.0],[0.4,1.0,0.0,0.0],[0.0,0.0,1.0,0.0],[0.0,0.0,0.0,1.0]]"
    done = ncrisk([f"markets.copula.correlation={matrix}", "run.n_paths=100"], tmp_path)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr and done.stderr.count("invalid input") == 1
    assert "markets.copula.correlation[0][1]" in done.stderr and "symmetric" in done.stderr
    assert not (tmp_path / "results").exists()


def test_cli_names_the_entry_of_an_integer_written_correlation_override(
    tmp_path: Path,
) -> None:
    """The override as a user types it, ``[[1,0.5,0,0],[0.4,1,0,0],...]``: exit 2 with one
    message naming ``markets.copula.correlation[0][1]`` (the asymmetric entry)."""
    matrix = "[[1,0.5,0,0],[0.4,1,0,0],[0,0,1,0],[0,0,0,1]]"
    done = ncrisk([f"markets.copula.correlation={matrix}", "run.n_paths=100"], tmp_path)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr and done.stderr.count("invalid input") == 1
    assert "markets.copula.correlation[0][1]" in done.stderr


def test_correlation_error_shows_the_value_as_written() -> None:
    """The message of an asymmetric entry shows 0.5, as the user wrote it."""
    matrix = [[1.0, 0.5, 0, 0], [0.4, 1.0, 0, 0], [0, 0, 1.0, 0], [0, 0, 0, 1.0]]
    with pytest.raises(InputError) as info:
        CopulaConfig(correlation=matrix)
    assert "value:   0.5\n" in info.value.message()
