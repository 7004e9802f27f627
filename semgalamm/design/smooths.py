"""Smooth terms in mixed-model form, as gamm4 (and galamm) build them from mgcv.

A smooth ``f(x) = B(x) γ`` with penalty ``λ γᵀ S γ`` is the same model as a mixed model whose
unpenalized directions are fixed effects and whose penalized directions are iid random effects
with variance ``σ² = 1/λ`` (after rescaling).  Two steps, each mirroring an mgcv function:

1. :func:`construct_smooth` ≈ ``mgcv::smoothCon(spec, data, absorb.cons = TRUE)``: build the
   basis (:mod:`semgalamm.design.smooth_bases`), rescale the penalty by
   ``‖S‖₁ / ‖X‖∞²``, apply a ``by`` variable, and absorb the sum-to-zero constraint
   ``1ᵀ X γ = 0`` by ``γ = Z γ'`` (R's Householder QR of ``Cᵀ``).  The result, a
   :class:`SmoothBasis`, holds ``X = B_c(data)`` and the penalties ``S_j``; a factor ``by``
   gives one :class:`SmoothBasis` per level.
2. :meth:`SmoothBasis.mixed_form` ≈ ``mgcv::smooth2random(sm, vnames, type = 2)``: returns a
   :class:`MixedSmooth` with fixed-effect columns ``X_f`` and random blocks ``Z_j`` such that
   ``X γ = X_f β + Σ_j Z_j b_j`` with ``b_j ~ N(0, σ_j² I)``, and the linear map ``G`` with
   ``γ = G [β; b_1; …; b_J]`` (mgcv's ``trans.U``/``trans.D``/``rind`` in one matrix).

Column names follow gamm4: fixed columns ``"s(x)Fx1"``, …; a random block carries the smooth's
label (``"s(x)"``), or the label plus the t2 penalty label (``"t2(x,z)rn"``) when a t2 smooth has
several penalties.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from semgalamm.design.smooth_bases import (
    CrBasis,
    FloatArray,
    TprsBasis,
    cr_basis,
    householder_qr_null,
    natural_parameterization,
    r_symmetric_eigen,
    t2_model_matrix,
    tprs_basis,
)

__all__ = ["SmoothSpec", "SmoothBasis", "MixedSmooth", "T2Basis", "construct_smooth"]


@dataclass(frozen=True)
class SmoothSpec:
    """One smooth term of a model formula, e.g. ``s(x, k = 5, by = z)`` or ``t2(x, z)``.

    Attributes
    ----------
    kind : {"s", "t2"}
        Ordinary smooth or mgcv's type-2 tensor product.
    variables : tuple of str
        Covariates smoothed over.
    bs : str or tuple of str, optional
        Basis: ``"tp"`` (default for ``s``) or ``"cr"`` (default, and only choice, of each ``t2``
        margin).
    k : int or tuple of int, optional
        Basis dimension (per margin for ``t2``); ``None`` uses mgcv's default.
    by : str, optional
        Numeric column multiplying the smooth, or factor giving one smooth per level.
    fx : bool
        Unpenalized (all columns fixed effects); not available for ``t2``, as in mgcv.
    m : int, optional
        Penalty order of a ``tp`` basis.
    """

    kind: str
    variables: tuple[str, ...]
    bs: str | tuple[str, ...] | None = None
    k: int | tuple[int, ...] | None = None
    by: str | None = None
    fx: bool = False
    m: int | None = None

    @property
    def label(self) -> str:
        """mgcv's term label, e.g. ``"s(x)"`` or ``"t2(x,z)"``."""
        return f"{self.kind}({','.join(self.variables)})"


@dataclass(frozen=True)
class T2Basis:
    """State of a t2 tensor product: marginal bases and their reparameterizations ``P_j``."""

    margins: tuple[TprsBasis | CrBasis, ...]
    margin_vars: tuple[tuple[str, ...], ...]
    P: tuple[FloatArray, ...]
    ranks: tuple[int, ...]

    def evaluate_frame(self, data: pd.DataFrame) -> FloatArray:
        """Tensor product model matrix at the rows of ``data``."""
        Xm = [
            b.evaluate(_columns(data, v)) @ P
            for b, v, P in zip(self.margins, self.margin_vars, self.P, strict=True)
        ]
        return t2_model_matrix(Xm, list(self.ranks))[0]


@dataclass(frozen=True)
class MixedSmooth:
    """A smooth in mixed-model form (mgcv's ``smooth2random(type = 2)``).

    Attributes
    ----------
    label : str
        Term label, including any ``by`` part (``"s(x0):x2"``).
    fixed : ndarray (n, p_f)
        Fixed-effect columns ``X_f`` (penalty null space; may have zero columns).
    fixed_names : tuple of str
        ``"<label>Fx1"``, ….
    random : tuple of ndarray (n, k_j)
        Random-effect blocks ``Z_j``, each with iid ``N(0, σ_j²)`` coefficients.
    random_names : tuple of str
        One name per block.
    coef_map : ndarray (p, p_f + Σ k_j)
        ``G`` with ``γ = G [β; b_1; …; b_J]``, ``γ`` the coefficients of the constrained basis
        (:meth:`SmoothBasis.predict_matrix`), so ``X_f β + Σ Z_j b_j = X G [β; b]``.
    """

    label: str
    fixed: FloatArray
    fixed_names: tuple[str, ...]
    random: tuple[FloatArray, ...]
    random_names: tuple[str, ...]
    coef_map: FloatArray

    def to_basis_coefficients(
        self, beta_fixed: FloatArray, b_random: list[FloatArray] | tuple[FloatArray, ...]
    ) -> FloatArray:
        """Basis coefficients ``γ = G [β; b_1; …; b_J]`` from fitted fixed and random parts."""
        parts = [np.asarray(beta_fixed, dtype=float).reshape(-1)]
        parts += [np.asarray(b, dtype=float).reshape(-1) for b in b_random]
        return self.coef_map @ np.concatenate(parts)


@dataclass(frozen=True)
class SmoothBasis:
    """A constructed smooth with constraint absorbed (one element of mgcv's ``smoothCon`` list).

    Attributes
    ----------
    spec : SmoothSpec
        The term it was built from.
    label : str
        ``spec.label`` plus ``":<by>"`` (numeric ``by``) or ``":<by><level>"`` (factor ``by``).
    X : ndarray (n, p)
        Model matrix ``B_c(data)`` for the data it was built on.
    S : tuple of ndarray (p, p)
        Penalties after rescaling and constraint absorption (empty if ``fx``).
    rank : tuple of int
        Rank of each penalty.
    penalty_labels : tuple of str
        ``""`` for a single penalty, t2 block labels (``"rr"``, ``"nr"``, …) otherwise.
    basis : TprsBasis or CrBasis or T2Basis
        Raw basis state used for prediction.
    Zc : ndarray (p_raw, p)
        Constraint absorption, ``B_c(x) = B(x) Z_c`` (identity when unconstrained).
    by_level : str, optional
        Factor level for a factor ``by``.
    centre : ndarray (p,)
        Column means over the data of ``B(x) Z_c`` before any ``by`` is applied, when a
        constraint was absorbed (zeros otherwise); see :meth:`centred_predict_matrix`.
    """

    spec: SmoothSpec
    label: str
    X: FloatArray
    S: tuple[FloatArray, ...]
    rank: tuple[int, ...]
    penalty_labels: tuple[str, ...]
    basis: TprsBasis | CrBasis | T2Basis
    Zc: FloatArray
    by_level: str | None = None
    centre: FloatArray | None = None

    def predict_matrix(self, newdata: pd.DataFrame) -> FloatArray:
        """Basis matrix ``B_c(newdata)`` in the constrained (fitting) parameterization.

        Matches ``mgcv::PredictMat`` for ``s()`` terms.  For ``t2`` terms mgcv predicts under a
        different constraint (sum to zero of the whole smooth); that parameterization differs
        only by a constant shift, obtained with :meth:`centred_predict_matrix`.
        """
        raw = _raw_design(self.basis, self.spec, newdata)
        return _apply_by(raw, self.spec, newdata, self.by_level) @ self.Zc

    def centred_predict_matrix(self, newdata: pd.DataFrame) -> FloatArray:
        """Basis matrix of the smooth centred over the data: ``(B(newdata) Z_c − 1 cᵀ)`` times any
        ``by`` variable, with ``c`` = :attr:`centre`.

        For a constrained smooth this equals mgcv's prediction-time parameterization (the
        ``PredictMat`` of a t2 term, whose whole function sums to zero over the data) with the
        same coefficients ``γ``; the difference from :meth:`predict_matrix` is a constant that
        belongs to the intercept.  For ``s()`` terms ``c`` is zero up to rounding.
        """
        raw = _raw_design(self.basis, self.spec, newdata) @ self.Zc
        centre = np.zeros(raw.shape[1]) if self.centre is None else self.centre
        return _apply_by(raw - centre, self.spec, newdata, self.by_level)

    def evaluate(
        self,
        newdata: pd.DataFrame,
        mixed: MixedSmooth,
        coefs: FloatArray,
        cov: FloatArray | None = None,
        centred: bool = False,
    ) -> tuple[FloatArray, FloatArray | None]:
        """Smooth ``f(x) = B(x) G c`` at ``newdata`` with standard errors ``√diag(A V Aᵀ)``.

        Parameters
        ----------
        newdata : pandas.DataFrame
            Covariate values (and ``by`` values).
        mixed : MixedSmooth
            The mixed form of this smooth (gives ``G``).
        coefs : ndarray
            ``c = [β; b_1; …; b_J]``, fitted fixed and random coefficients of the smooth.
        cov : ndarray, optional
            Covariance ``V`` of ``c`` (e.g. the joint posterior covariance of fixed and random
            effects); standard errors are returned when given.
        centred : bool
            Use :meth:`centred_predict_matrix` (mgcv's plotted, centred smooth).
        """
        B = self.centred_predict_matrix(newdata) if centred else self.predict_matrix(newdata)
        A = B @ mixed.coef_map
        fit = A @ np.asarray(coefs, dtype=float)
        if cov is None:
            return fit, None
        return fit, np.sqrt(np.einsum("ij,jk,ik->i", A, np.asarray(cov, dtype=float), A))

    def mixed_form(self) -> MixedSmooth:
        """Split into fixed and random parts (mgcv's ``smooth2random(type = 2)``)."""
        p = self.X.shape[1]
        if self.spec.fx or not self.S:
            names = tuple(f"{self.label}Fx{j + 1}" for j in range(p))
            return MixedSmooth(self.label, self.X, names, (), (), np.eye(p))
        if isinstance(self.basis, T2Basis):
            return self._mixed_form_t2()
        # R's eigen(S, symmetric = TRUE), as mgcv's smooth2random calls it: LAPACK dsyevr on
        # the lower triangle, eigenvalues descending. The same driver gives the eigenvectors
        # R gives, signs included (dsyevr's MRRR makes each vector positive at its twist
        # index), so the unpenalized columns Fx<j> have gamm4's signs.
        values, U = r_symmetric_eigen(self.S[0])
        r = min(self.rank[0], p)
        D = np.concatenate([1.0 / np.sqrt(values[:r]), np.ones(p - r)])
        UD = U * D
        XUD = self.X @ UD
        fixed_names = tuple(f"{self.label}Fx{j + 1}" for j in range(p - r))
        coef_map = np.hstack([UD[:, r:], UD[:, :r]])
        return MixedSmooth(
            self.label, XUD[:, r:], fixed_names, (XUD[:, :r],), (self.label,), coef_map
        )

    def _mixed_form_t2(self) -> MixedSmooth:
        p = self.X.shape[1]
        penalized = np.zeros(p, dtype=bool)
        blocks, cols, scales = [], [], []
        for Sj in self.S:
            diag = np.diag(Sj)
            idx = np.flatnonzero(diag != 0)
            penalized[idx] = True
            scale = 1.0 / np.sqrt(diag[idx])
            blocks.append(self.X[:, idx] * scale)
            cols.append(idx)
            scales.append(scale)
        fixed_idx = np.flatnonzero(~penalized)
        n_par = fixed_idx.size + sum(c.size for c in cols)
        G = np.zeros((p, n_par))
        G[fixed_idx, np.arange(fixed_idx.size)] = 1.0
        start = fixed_idx.size
        for idx, scale in zip(cols, scales, strict=True):
            G[idx, start + np.arange(idx.size)] = scale
            start += idx.size
        if len(self.S) == 1:
            names = (self.label,)
        else:
            names = tuple(f"{self.label}{lab}" for lab in self.penalty_labels)
        fixed_names = tuple(f"{self.label}Fx{j + 1}" for j in range(fixed_idx.size))
        return MixedSmooth(self.label, self.X[:, fixed_idx], fixed_names, tuple(blocks), names, G)


# ---------------------------------------------------------------------------------------------


def _columns(data: pd.DataFrame, names: tuple[str, ...]) -> FloatArray:
    return np.column_stack([np.asarray(data[v], dtype=float) for v in names])


def _factor_levels(values: pd.Series) -> tuple[list[str], bool]:
    """Levels as R's ``factor()`` gives them (categorical order, else sorted) and orderedness."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        return [str(c) for c in values.cat.categories], bool(values.cat.ordered)
    return sorted({str(v) for v in values}), False


def _is_factor(values: pd.Series) -> bool:
    return isinstance(values.dtype, pd.CategoricalDtype) or not pd.api.types.is_numeric_dtype(
        values
    )


def _raw_design(
    basis: TprsBasis | CrBasis | T2Basis, spec: SmoothSpec, data: pd.DataFrame
) -> FloatArray:
    if isinstance(basis, T2Basis):
        return basis.evaluate_frame(data)
    return basis.evaluate(_columns(data, spec.variables))


def _apply_by(X: FloatArray, spec: SmoothSpec, data: pd.DataFrame, level: str | None) -> FloatArray:
    if spec.by is None:
        return X
    by = data[spec.by]
    if level is not None:
        return X * (by.astype(str).to_numpy() == level)[:, None]
    return X * np.asarray(by, dtype=float)[:, None]


def _build_raw(spec: SmoothSpec, data: pd.DataFrame):
    """Raw basis, ``X``, penalties, ranks, penalty labels, and whether a constraint applies."""
    if spec.kind == "s":
        bs = spec.bs or "tp"
        if bs == "tp":
            basis, X, S, M = tprs_basis(_columns(data, spec.variables), spec.k, spec.m)
        elif bs == "cr":
            if len(spec.variables) != 1:
                raise ValueError("bs='cr' handles one covariate only")
            basis, X, S, M = cr_basis(_columns(data, spec.variables)[:, 0], spec.k)
        else:
            raise NotImplementedError(f"smooth basis bs={bs!r} is not implemented")
        p = X.shape[1]
        C = X.mean(axis=0)[None, :]
        return basis, X, [S], [p - M], [""], C
    if spec.kind == "t2":
        return _build_t2(spec, data)
    raise ValueError(f"unknown smooth kind {spec.kind!r}")


def _build_t2(spec: SmoothSpec, data: pd.DataFrame):
    if spec.fx:
        raise ValueError("t2() has no fx argument in mgcv")
    nm = len(spec.variables)
    bs = spec.bs or "cr"
    bss = (bs,) * nm if isinstance(bs, str) else tuple(bs)
    ks = spec.k if isinstance(spec.k, tuple) else (spec.k,) * nm
    ks = tuple(5 if (k is None or k < 3) else k for k in ks)
    margins, Xm, P, ranks = [], [], [], []
    for var, b, k in zip(spec.variables, bss, ks, strict=True):
        x = _columns(data, (var,))
        if b == "cr":
            basis, X, S, M = cr_basis(x[:, 0], k)
        elif b == "tp":
            basis, X, S, M = tprs_basis(x, k, spec.m)
        else:
            raise NotImplementedError(f"t2 margin bs={b!r} is not implemented")
        r = X.shape[1] - M
        Pj = natural_parameterization(X, S, r)
        margins.append(basis)
        Xm.append(X @ Pj)
        P.append(Pj)
        ranks.append(r)
    X, sub_cols, labels = t2_model_matrix(Xm, ranks)
    p = X.shape[1]
    S, edges = [], np.concatenate([[0], np.cumsum(sub_cols)])
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        d = np.zeros(p)
        d[a:b] = 1.0
        S.append(np.diag(d))
    null_dim = p - int(edges[-1])
    n_pen = int(edges[-1])
    if null_dim == 0:
        C = np.zeros((0, p))
    elif null_dim == 1:
        C = "last"  # mgcv: set the single null space coefficient to zero
    else:
        C = np.zeros((1, p))
        C[0, n_pen:] = X[:, n_pen:].sum(axis=0)
    basis = T2Basis(tuple(margins), tuple((v,) for v in spec.variables), tuple(P), tuple(ranks))
    return basis, X, S, list(sub_cols), labels, C


def _constraint_map(C, p: int) -> FloatArray:
    """``Z_c`` absorbing ``C γ = 0`` as ``smoothCon(absorb.cons = TRUE)`` does."""
    if isinstance(C, str):  # set-to-zero on the last coefficient
        return np.eye(p)[:, : p - 1]
    if C.shape[0] == 0:
        return np.eye(p)
    indi = np.flatnonzero(C.sum(axis=0) != 0)
    if indi.size == p:
        return householder_qr_null(C)
    nc = C.shape[0]
    Zs = householder_qr_null(C[:, indi])
    Zc = np.eye(p)
    nz = indi.size - nc
    for t in range(nz):
        Zc[:, indi[t]] = 0.0
        Zc[indi, indi[t]] = Zs[:, t]
    return np.delete(Zc, indi[nz:], axis=1)


def construct_smooth(spec: SmoothSpec, data: pd.DataFrame) -> tuple[SmoothBasis, ...]:
    """Build a smooth term as ``mgcv::smoothCon(spec, data, absorb.cons = TRUE)`` does.

    Parameters
    ----------
    spec : SmoothSpec
        The term.
    data : pandas.DataFrame
        Data holding ``spec.variables`` and ``spec.by``.

    Returns
    -------
    tuple of SmoothBasis
        One element, or one per level of a factor ``by`` (all levels but the first for an
        ordered factor, as in mgcv).
    """
    basis, X_raw, S_raw, ranks, labels, C = _build_raw(spec, data)
    p_raw = X_raw.shape[1]
    if spec.fx:
        S_raw, ranks, labels = [], [], []
    else:  # scale.penalty = TRUE: S ← S ‖X‖∞² / ‖S‖₁
        maXX = np.abs(X_raw).sum(axis=1).max() ** 2
        S_raw = [S * maXX / np.abs(S).sum(axis=0).max() for S in S_raw]
    levels: list[str | None] = [None]
    label = spec.label
    if spec.by is not None:
        by = data[spec.by]
        if _is_factor(by):
            lev, ordered = _factor_levels(by)
            levels = list(lev[1:] if ordered and len(lev) > 1 else lev)
        else:
            byv = np.asarray(by, dtype=float)
            if byv.std(ddof=1) > byv.mean() * np.finfo(float).eps * 1000:
                C = np.zeros((0, p_raw))  # no centring constraint for a varying numeric by
            label = f"{spec.label}:{spec.by}"
    Zc = _constraint_map(C, p_raw)
    n_cons = p_raw - Zc.shape[1]
    S = tuple(Zc.T @ Sj @ Zc for Sj in S_raw)
    centre = (X_raw @ Zc).mean(axis=0) if n_cons > 0 else np.zeros(Zc.shape[1])
    rank = tuple(min(r, p_raw - n_cons) for r in ranks)
    out = []
    for level in levels:
        lab = label if level is None else f"{spec.label}:{spec.by}{level}"
        X = _apply_by(X_raw, spec, data, level) @ Zc
        out.append(SmoothBasis(spec, lab, X, S, rank, tuple(labels), basis, Zc, level, centre))
    return tuple(out)
