"""Adaptive Gauss-Hermite quadrature (glmer's nAGQ > 1) for one scalar random effect per
cluster.

When every row depends on a single spherical random effect u_j ~ N(0, 1) of its cluster j
(one grouping factor with one column: a random intercept, with or without loadings),
H = A' D A + I is diagonal and the likelihood is a product of one-dimensional integrals.
With G_j(u) = sum_{i in j} l_i(nu_i(u)) - u^2 / 2, the conditional mode u^_j of PIRLS, the
curvature h_j = 1 + sum_{i in j} d_i a_i^2 (the weight d of the Laplace log-determinant) and
the probabilists' Gauss-Hermite rule (z_k, w_k), sum_k w_k = 1, the nodes are
u_jk = u^_j + z_k / sqrt(h_j) and

    -2 log L = sum_j [ log h_j - 2 log sum_k w_k exp(G_j(u_jk) + z_k^2 / 2) ]

(the integral of exp(G_j) / sqrt(2 pi) after the change of variable u = u^ + z / sqrt(h)).
With one node (z = 0, w = 1) this is the Laplace deviance. lme4's glmerAGQ computes the same
sum with the deviance residuals in place of -2 l_i, so the deviance it reports differs from
this one by the constant 2 sum_i l_i(saturated) (R's warning: "GLMMs with nAGQ > 1 have
log-likelihoods incommensurate with glm() objects"); this module keeps every normalizing
constant, as the Laplace objective does.

The exact gradient (``adjoints``) differentiates through u^ and h: with node weights
p_jk = w_k exp(G_j(u_jk) + z_k^2 / 2) / sum_k (...), g_jk = G_j'(u_jk) and s_j = h_j^{-1/2},

    dD_j = -2 sum_k p_jk dG_j(u_jk)|_u + C_u du^_j + C_h dh_j,
    C_u = -2 sum_k p_jk g_jk,   C_h = 1 / h_j + (s_j / h_j) sum_k p_jk g_jk z_k,

where du^_j follows from G_j'(u^_j) = 0 (curvature h_obs,j = 1 + sum d_obs a^2) and dh_j from
the rows' d, d' = dd/dnu and dd/dpsi at u^; every term is a sum over rows of the row's
derivatives with respect to its value a_i of A, its fixed predictor and its psi, the form
``RowAdjoints`` hands to the chain rule of ``gradient.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from numpy.polynomial.hermite_e import hermegauss
from numpy.typing import NDArray
from scipy.special import logsumexp

from semgalamm.design.design import Design
from semgalamm.errors import UnsupportedError
from semgalamm.families import RowTerms
from semgalamm.laplace.objective import LaplaceGLMM, LaplaceState, RowAdjoints

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class _Nodes:
    """The quadrature at one parameter value: per cluster j and node k (q, m) arrays, and the
    row terms at the nodes as (m, n) arrays."""

    deviance: float
    u: FloatArray  # u_jk
    p: FloatArray  # normalized node weights p_jk
    g: FloatArray  # G_j'(u_jk)
    score: FloatArray  # dl_i/dnu at the nodes (m, n)
    loglik_psi: FloatArray  # dl_i/dpsi at the nodes (m, n, 2)


def check_scalar_random_effect(design: Design, n_agq: int) -> None:
    """UnsupportedError unless every row has one scalar random effect (adaptive quadrature
    over one dimension per cluster), or n_agq is not a positive integer."""
    if not (isinstance(n_agq, (int, np.integer)) and n_agq >= 1):
        raise UnsupportedError(f"n_agq must be a positive integer (1 = Laplace), not {n_agq!r}.")
    terms = [f"({' + '.join(b.columns)} | {b.group})" for b in design.blocks]
    if len(design.blocks) != 1 or design.blocks[0].k != 1:
        raise UnsupportedError(
            f"n_agq > 1 (adaptive Gauss-Hermite quadrature) needs exactly one grouping factor "
            f"with one random effect per cluster, e.g. (1 | group); this model has "
            f"{sum(b.k for b in design.blocks)} random effects per row "
            f"({len(design.blocks)} random-term blocks"
            f"{': ' + ', '.join(terms) if terms else ''}), so its integral is not one-"
            "dimensional per cluster. Use n_agq=1 (the Laplace approximation)."
        )


class AdaptiveQuadrature(LaplaceGLMM):
    """-2 log L(theta, beta, lambda, psi) by adaptive Gauss-Hermite quadrature with
    ``n_agq`` nodes per cluster, around the Laplace fit's conditional modes."""

    def __init__(self, design: Design, n_agq: int, tol: float = 1e-10,
                 max_iter: int = 100) -> None:
        check_scalar_random_effect(design, n_agq)
        super().__init__(design, tol=tol, max_iter=max_iter)
        self.n_agq = n_agq
        z, w = hermegauss(n_agq)
        self.z = z
        self.log_w = np.log(w / np.sqrt(2.0 * np.pi))  # sum_k w_k = 1
        self.cluster = self.system.columns[:, 0]

    def _curvature(self, values: FloatArray, weight: FloatArray) -> FloatArray:
        """h_j = 1 + sum_{i in j} weight_i a_i^2."""
        return 1.0 + np.bincount(self.cluster, weights=weight * values[:, 0] ** 2,
                                 minlength=self.system.q)

    def _quadrature(self, state: LaplaceState, values: FloatArray, terms: RowTerms,
                    psi: FloatArray) -> _Nodes:
        d, c = self.design, self.cluster
        a = values[:, 0]
        h = self._curvature(values, terms.weight)
        nu_fixed = state.nu - a * state.u[c]
        u = state.u[:, None] + self.z[None, :] / np.sqrt(h)[:, None]  # (q, m)
        log_terms = np.empty_like(u)
        g = np.empty_like(u)
        score = np.empty((self.z.size, d.n))
        loglik_psi = np.empty((self.z.size, d.n, 2))
        for k in range(self.z.size):
            nodes = d.families.terms(d.y, nu_fixed + a * u[c, k], d.weights, d.trials, psi)
            with np.errstate(over="ignore", invalid="ignore"):
                G = np.bincount(c, weights=nodes.loglik, minlength=u.shape[0]) - 0.5 * u[:, k]**2
            log_terms[:, k] = G + 0.5 * self.z[k] ** 2 + self.log_w[k]
            g[:, k] = np.bincount(c, weights=nodes.score * a, minlength=u.shape[0]) - u[:, k]
            score[k], loglik_psi[k] = nodes.score, nodes.loglik_psi
        log_f = logsumexp(log_terms, axis=1)
        deviance = float(np.sum(np.log(h)) - 2.0 * np.sum(log_f))
        if not np.isfinite(deviance):
            deviance = np.inf
        return _Nodes(deviance, u, np.exp(log_terms - log_f[:, None]), g, score, loglik_psi)

    def evaluate(self, theta: FloatArray, beta: FloatArray, lam: FloatArray,
                 psi: FloatArray) -> LaplaceState:
        state, values, _, terms = self._fit(theta, beta, lam, psi)
        if terms is None or not np.isfinite(state.deviance):
            return state
        return replace(state, deviance=self._quadrature(state, values, terms, psi).deviance)

    def adjoints(self, theta: FloatArray, beta: FloatArray, lam: FloatArray, psi: FloatArray
                 ) -> tuple[LaplaceState, RowAdjoints | None]:
        """The state and the derivatives of the quadrature deviance with respect to each
        row's value of A, its nu through X beta and its psi (module docstring)."""
        state, values, _, terms = self._fit(theta, beta, lam, psi)
        if terms is None or not np.isfinite(state.deviance):
            return state, None
        nodes = self._quadrature(state, values, terms, psi)
        state = replace(state, deviance=nodes.deviance)
        if not np.isfinite(nodes.deviance):
            return state, None
        c, a, q = self.cluster, values[:, 0], self.system.q
        u_hat = state.u[c]
        h = self._curvature(values, terms.weight)
        h_obs = self._curvature(values, terms.observed_weight)
        s = 1.0 / np.sqrt(h)
        c_u = -2.0 * np.sum(nodes.p * nodes.g, axis=1)
        c_h = 1.0 / h + s / h * np.sum(nodes.p * nodes.g * self.z[None, :], axis=1)
        # du^ enters directly and through h (dh/du^ = sum a^3 d'): its total coefficient
        c_u = c_u + c_h * np.bincount(c, weights=a**3 * terms.weight_nu, minlength=q)
        mode = (c_u / h_obs)[c]  # times du^'s row terms below
        p_rows = nodes.p[c].T  # (m, n): the node weights of each row's cluster
        node_score = np.sum(p_rows * nodes.score, axis=0)
        node_score_u = np.sum(p_rows * nodes.score * nodes.u[c].T, axis=0)
        node_psi = np.einsum("kn,knj->nj", p_rows, nodes.loglik_psi)
        ch = c_h[c]
        r_nu = (-2.0 * node_score + ch * a**2 * terms.weight_nu
                - mode * terms.observed_weight * a)
        r_a = (-2.0 * node_score_u + ch * (2.0 * terms.weight * a + a**2 * terms.weight_nu * u_hat)
               + mode * (terms.score - terms.observed_weight * a * u_hat))
        r_psi = (-2.0 * node_psi + (ch * a**2)[:, None] * terms.weight_psi
                 + (mode * a)[:, None] * terms.score_psi)
        return state, RowAdjoints(values=r_a[:, None], X=np.outer(r_nu, beta), nu=r_nu,
                                  psi=r_psi)
