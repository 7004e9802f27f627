"""Maximum likelihood for a RamModel: constraints, starting values, Fisher scoring, vcov.

Equality constraints (labels shared across rows are already one free position; ``a == 2*b``
written in the model) must be linear in the labels: they become x = x_p + K z with K a basis of
the null space of the constraint Jacobian, and the optimizer works on z. Inequalities on one
label (``v > 0.9``) are handled by an active set: a bound that the unconstrained optimum
violates is held as an equality (as lavaan reports it), and the fit is repeated.

The optimizer is Fisher scoring on z, z <- z + (K^T I K)^-1 K^T g, with step halving; the
gradient g and expected information I are exact (covstruct.likelihood).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.linalg import null_space

from semgalamm.covstruct.likelihood import LikelihoodValue
from semgalamm.errors import SpecError, UnsupportedError
from semgalamm.spec.expressions import evaluate
from semgalamm.spec.partable import ParameterTable

FloatArray = NDArray[np.float64]
Evaluate = Callable[[FloatArray, bool, bool], LikelihoodValue]


@dataclass(frozen=True)
class AffineConstraints:
    """x = x_p + K z: the free vector on the constraint surface."""

    x_p: FloatArray
    K: FloatArray

    def to_x(self, z: FloatArray) -> FloatArray:
        return self.x_p + self.K @ z

    def to_z(self, x: FloatArray) -> FloatArray:
        return np.linalg.lstsq(self.K, x - self.x_p, rcond=None)[0]


@dataclass(frozen=True)
class MlEstimate:
    """The optimum: x, loglik, the constraints used, convergence, and the active bounds."""

    x: FloatArray
    loglik: float
    constraints: AffineConstraints
    converged: bool
    iterations: int
    message: str
    active: tuple[str, ...] = ()


def label_env(table: ParameterTable, x: FloatArray) -> dict[str, float]:
    """Label -> value (free or fixed), then every ``:=`` name in order."""
    env: dict[str, float] = {}
    for row in table.rows:
        if row.label:
            env[row.label] = float(x[row.free - 1]) if row.free else float(row.value)
    for definition in table.definitions:
        env[definition.name] = evaluate(definition.expr, env)
    return env


def _constraint_function(table: ParameterTable, items) -> Callable[[FloatArray], FloatArray]:
    def value(x: FloatArray) -> FloatArray:
        env = label_env(table, x)
        return np.array([evaluate(c.lhs, env) - evaluate(c.rhs, env) for c in items])

    return value


def _jacobian(f: Callable[[FloatArray], FloatArray], x: FloatArray, h: float = 1e-6
              ) -> FloatArray:
    columns = []
    for k in range(len(x)):
        step = np.zeros_like(x)
        step[k] = h
        columns.append((f(x + step) - f(x - step)) / (2 * h))
    return np.array(columns).T


def linear_constraints(table: ParameterTable, equalities: list, n_free: int,
                       rng: np.random.Generator) -> AffineConstraints:
    """The affine map onto the surface of the (linear) equality constraints."""
    if not equalities:
        return AffineConstraints(np.zeros(n_free), np.eye(n_free))
    f = _constraint_function(table, equalities)
    a, b = rng.normal(size=n_free), rng.normal(size=n_free)
    J = _jacobian(f, a)
    if not np.allclose(J, _jacobian(f, b), atol=1e-6):
        raise UnsupportedError(
            "Nonlinear equality constraints are not supported; "
            + "; ".join(c.text for c in equalities) + ". Write them as linear equations of "
            "the labels (e.g. 'a == 2*b')."
        )
    if not np.abs(J).sum(axis=1).all():
        raise SpecError(
            "A constraint involves no free parameter: "
            + "; ".join(c.text for c in equalities) + ". Remove it."
        )
    x_p = np.linalg.lstsq(J, -f(np.zeros(n_free)), rcond=None)[0]
    if np.abs(f(x_p)).max() > 1e-8:
        raise SpecError(
            "The constraints contradict each other: " + "; ".join(c.text for c in equalities)
            + "."
        )
    return AffineConstraints(x_p, null_space(J))


def fisher_scoring(evaluate_at: Evaluate, constraints: AffineConstraints, x0: FloatArray,
                   max_iter: int = 500, tol: float = 1e-10) -> MlEstimate:
    """Maximize the log-likelihood over z (x = x_p + K z) by Fisher scoring."""
    K = constraints.K
    z = constraints.to_z(x0)
    x = constraints.to_x(z)
    current = evaluate_at(x, True, True)
    if not np.isfinite(current.loglik):
        raise SpecError(
            "The starting values give a covariance matrix that is not positive definite. "
            "Give start values with start() in the model string."
        )
    message = "maximum number of iterations reached"
    converged = False
    iteration = 0
    while iteration < max_iter:
        iteration += 1
        g = K.T @ current.gradient
        info = K.T @ current.information @ K
        try:
            step = np.linalg.solve(info + 1e-12 * np.eye(len(g)) * np.trace(info), g)
        except np.linalg.LinAlgError:
            step = g / max(np.abs(np.diag(info)).max(), 1.0)
        decrement = float(g @ step)
        if decrement < tol * max(1.0, abs(current.loglik)) * 1e-2 or decrement < 1e-12:
            converged = True
            message = "converged"
            break
        scale = 1.0
        for _ in range(40):
            candidate_z = z + scale * step
            candidate = evaluate_at(constraints.to_x(candidate_z), True, True)
            if np.isfinite(candidate.loglik) and candidate.loglik >= current.loglik - 1e-12:
                break
            scale /= 2
        else:
            message = "no step improves the likelihood"
            converged = decrement < 1e-6
            break
        z, current = candidate_z, candidate
    return MlEstimate(constraints.to_x(z), current.loglik, constraints, converged,
                      iteration, message)


def maximize(table: ParameterTable, evaluate_at: Evaluate, x0: FloatArray) -> MlEstimate:
    """Fit with the table's constraints; inequalities by an active set of bounds."""
    rng = np.random.default_rng(0)
    n_free = table.n_free
    equalities = [c for c in table.constraints if c.op == "=="]
    inequalities = [c for c in table.constraints if c.op in ("<", ">")]
    active: list = []
    for _ in range(len(inequalities) + 1):
        constraints = linear_constraints(table, equalities + active, n_free, rng)
        start = constraints.to_x(constraints.to_z(x0))
        estimate = fisher_scoring(evaluate_at, constraints, start)
        violated = [c for c in inequalities if c not in active and not _holds(table, c,
                                                                               estimate.x)]
        if not violated:
            return MlEstimate(estimate.x, estimate.loglik, constraints, estimate.converged,
                              estimate.iterations, estimate.message,
                              tuple(c.text for c in active))
        active.append(violated[0])
        x0 = estimate.x
    return estimate


def _holds(table: ParameterTable, constraint, x: FloatArray) -> bool:
    env = label_env(table, x)
    lhs, rhs = evaluate(constraint.lhs, env), evaluate(constraint.rhs, env)
    return lhs >= rhs - 1e-9 if constraint.op == ">" else lhs <= rhs + 1e-9


def observed_information(evaluate_at: Evaluate, x: FloatArray, h: float = 1e-5
                         ) -> FloatArray:
    """-d^2 l / dx dx^T by central differences of the exact gradient (symmetrized)."""
    K = len(x)
    H = np.zeros((K, K))
    for k in range(K):
        step = np.zeros(K)
        step[k] = h * max(1.0, abs(x[k]))
        up = evaluate_at(x + step, True, False).gradient
        down = evaluate_at(x - step, True, False).gradient
        H[:, k] = -(up - down) / (2 * step[k])
    return (H + H.T) / 2


def covariance(information: FloatArray, constraints: AffineConstraints) -> FloatArray:
    """vcov(x) = K (K^T I K)^-1 K^T."""
    K = constraints.K
    reduced = K.T @ information @ K
    try:
        inverse = np.linalg.inv(reduced)
    except np.linalg.LinAlgError:
        inverse = np.linalg.pinv(reduced)
    return K @ inverse @ K.T
