"""The multivariate normal log-likelihood of a covariance-structure model, with its exact
gradient and Fisher information, pattern by pattern (complete data is one pattern).

For a pattern with n rows observing variables o, sample mean ybar and covariance C (divisor n),
P = Sigma_oo^-1 and d = ybar - mu_o:

    l      = -n/2 [ p_o log(2 pi) + log|Sigma_oo| + tr(P (C + d d^T)) ]
    dl/dk  =  n/2 tr(M dSigma_k) + n d^T P dmu_k,          M = P (C + d d^T) P - P
    I_kl   =  n/2 tr(P dSigma_k P dSigma_l) + n dmu_k^T P dmu_l   (expected information)

Without a mean structure the means are saturated (mu = ybar), so d = 0 and dmu drops out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from semgalamm.design.ram import BlockMoments
from semgalamm.design.sample_moments import GroupSample

FloatArray = NDArray[np.float64]
LOG_2PI = float(np.log(2 * np.pi))


@dataclass(frozen=True)
class LikelihoodValue:
    """loglik, its gradient (K,) and expected information (K, K) where asked for."""

    loglik: float
    gradient: FloatArray | None = None
    information: FloatArray | None = None


def pattern_terms(moments: BlockMoments, sample: GroupSample, meanstructure: bool,
                  gradient: bool, information: bool) -> LikelihoodValue:
    """The log-likelihood of one group's patterns at its implied moments."""
    total = 0.0
    K = moments.d_sigma.shape[0] if moments.d_sigma is not None else 0
    grad = np.zeros(K) if gradient else None
    info = np.zeros((K, K)) if information else None
    for pattern in sample.patterns:
        o = pattern.observed
        sigma = moments.sigma[np.ix_(o, o)]
        try:
            chol = np.linalg.cholesky(sigma)
        except np.linalg.LinAlgError:
            return LikelihoodValue(-np.inf)
        n = pattern.n
        d = pattern.mean - moments.mu[o] if meanstructure else np.zeros(len(o))
        P = np.linalg.inv(sigma)
        logdet = 2.0 * np.log(np.diag(chol)).sum()
        outer = pattern.cov + np.outer(d, d)
        total += -0.5 * n * (len(o) * LOG_2PI + logdet + float(np.sum(P * outer)))
        if gradient or information:
            ds = moments.d_sigma[:, o][:, :, o]
            dm = moments.d_mu[:, o]
        if gradient:
            M = P @ outer @ P - P
            grad += 0.5 * n * np.einsum("ij,kji->k", M, ds)
            if meanstructure:
                grad += n * dm @ (P @ d)
        if information:
            W = np.einsum("ij,kjl->kil", P, ds)  # P dSigma_k
            info += 0.5 * n * np.einsum("kij,lji->kl", W, W)
            if meanstructure:
                info += n * dm @ P @ dm.T
    return LikelihoodValue(total, grad, info)


def loglik(moments: list[BlockMoments], samples: list[GroupSample], meanstructure: bool,
           gradient: bool = False, information: bool = False) -> LikelihoodValue:
    """Sum over groups (one block per group) of :func:`pattern_terms`."""
    total = 0.0
    grad = info = None
    for block, sample in zip(moments, samples):
        part = pattern_terms(block, sample, meanstructure, gradient, information)
        if not np.isfinite(part.loglik):
            return LikelihoodValue(-np.inf)
        total += part.loglik
        if part.gradient is not None:
            grad = part.gradient if grad is None else grad + part.gradient
        if part.information is not None:
            info = part.information if info is None else info + part.information
    return LikelihoodValue(total, grad, info)
