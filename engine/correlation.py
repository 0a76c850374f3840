"""Correlation matrices from user files: checked, never repaired.

A matrix an analyst wrote (the markets' copula, ``markets.copula.correlation``,
and the one the lowering builds from it) must be a correlation matrix as
written: unit diagonal, entries in [-1, 1], symmetric and positive
semi-definite. A matrix that is not is rejected with one message naming the
first offending entry, or the factors most involved in a negative eigenvalue;
the engine never substitutes a nearby matrix the user did not write.
"""

from __future__ import annotations

import numpy as np

from engine.errors import InputError

__all__ = ["check_correlation"]


def check_correlation(matrix: np.ndarray, names: list[str], key: str, source: str) -> None:
    """Reject a correlation matrix that is not one; never repair it.

    Parameters
    ----------
    matrix : numpy.ndarray
        Square matrix to check.
    names : list of str
        Factor name of each row, for messages.
    key : str
        Dotted config key of the matrix.
    source : str
        File or group the matrix comes from.

    Raises
    ------
    InputError
        Naming the first offending entry: a value outside [-1, 1], a diagonal
        entry other than 1, an asymmetric pair, or the smallest eigenvalue when
        the matrix is not positive semi-definite.
    """
    n = len(names)
    if matrix.shape != (n, n) or not np.all(np.isfinite(matrix)):
        raise InputError(source, key, matrix.tolist(), f"a finite {n} x {n} matrix ({names})")
    for i in range(n):
        if matrix[i, i] != 1.0:
            raise InputError(
                source, f"{key}[{i}][{i}]", float(matrix[i, i]), f"1 ({names[i]} with itself)"
            )
        for j in range(n):
            if abs(matrix[i, j]) > 1.0:
                raise InputError(
                    source,
                    f"{key}[{i}][{j}]",
                    float(matrix[i, j]),
                    f"a correlation in [-1, 1] ({names[i]} vs {names[j]})",
                )
            if matrix[i, j] != matrix[j, i]:
                raise InputError(
                    source,
                    f"{key}[{i}][{j}]",
                    float(matrix[i, j]),
                    f"the same value as {key}[{j}][{i}] = {float(matrix[j, i])} (symmetric; "
                    f"{names[i]} vs {names[j]})",
                )
    values, vectors = np.linalg.eigh(matrix)
    if values[0] < -1e-10:
        worst = np.argsort(-np.abs(vectors[:, 0]))[:3]
        raise InputError(
            source,
            key,
            f"smallest eigenvalue {values[0]:.4g}",
            "a positive semi-definite matrix; the conflicting correlations involve "
            + ", ".join(names[k] for k in worst),
        )
