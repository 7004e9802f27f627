"""The chain rule from per-row derivatives (``RowAdjoints``) to theta and lambda.

Block b's values of A are a_i = z_i(ell) T_b(theta), z_i = z0_i times the row loading of the
column's latent; X_ij = X0_ij times the row loading of column j's latent. The effective
loadings are ell = E(lambda) M with E_k = offset_k + basis_k lambda and M = (I - B)^{-1},
so that d ell = dE M + ell dB M. Given G = df/dA and R = df/dX per row:

    df/dT_b       = z_b' G_b                           (k x k, read at theta's slots)
    df/dell_ik    = sum_{j: latent k} z0_ij (G_b T_b')_ij + sum_{j: latent k} X0_ij R_ij
    df/dlambda_p  = sum_k basis_k[:, p]' (df/dell M')_k + sum_{B[l, r] of p} (ell' df/dell M')_lr
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from semgalamm.design.design import Design
from semgalamm.laplace.objective import RowAdjoints

FloatArray = NDArray[np.float64]


def theta_lambda_gradient(
    design: Design, theta: FloatArray, lam: FloatArray, adjoints: RowAdjoints
) -> tuple[FloatArray, FloatArray]:
    """df/dtheta and df/dlambda from the per-row derivatives with respect to A and X."""
    ell = design.row_loadings(lam)
    grad_theta = np.zeros(theta.size)
    grad_ell = np.zeros_like(ell)
    start_theta = start_col = 0
    for block in design.blocks:
        T = block.factor(theta[start_theta : start_theta + block.n_theta])
        G = adjoints.values[:, start_col : start_col + block.k]
        z = design.block_values(block, ell)
        dT = z.T @ G  # callers hold BLAS to one thread (optimize.single_threaded_blas)
        slots = slice(start_theta, start_theta + block.n_theta)
        if block.scalar:
            grad_theta[slots] = np.trace(dT)
        else:
            grad_theta[slots] = dT[block._theta_positions()]
        if design.loadings is not None and any(k is not None for k in block.latent):
            dz = G @ T.T
            for j, k in enumerate(block.latent):
                if k is not None:
                    grad_ell[:, k] += block.z0[:, j] * dz[:, j]
        start_theta += block.n_theta
        start_col += block.k
    if design.loadings is None:
        return grad_theta, np.zeros(0)
    for j, k in enumerate(design.fixed_latent):
        if k is not None:
            grad_ell[:, k] += design.X0[:, j] * adjoints.X[:, j]
    return grad_theta, _lambda_gradient(design, lam, ell, grad_ell)


def _lambda_gradient(design: Design, lam: FloatArray, ell: FloatArray,
                     grad_ell: FloatArray) -> FloatArray:
    loadings = design.loadings
    grad_raw = grad_ell  # df/dE = df/dell M'
    grad = np.zeros(lam.size)
    if loadings.structural:
        total = loadings.total_effects(lam)
        grad_raw = grad_ell @ total.T
        through_b = ell.T @ grad_raw
        for entry in loadings.structural:
            if entry.parameter is not None:
                grad[entry.parameter] += through_b[entry.lhs, entry.rhs]
    return grad + loadings.lambda_chain(grad_raw)
