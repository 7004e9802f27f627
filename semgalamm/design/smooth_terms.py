"""Smooth terms of a model as design columns (gamm4's mixed-model form of a GAM).

A smooth ``f(x) = X_f beta_f + sum_j Z_j b_j`` (:meth:`SmoothBasis.mixed_form`) adds its
unpenalized columns ``X_f`` to X(lambda) and each penalized block ``Z_j`` to Z(lambda) as a
random block with one level and a scalar covariance, ``b_j ~ N(0, sigma_j^2 I)``
(``T = theta_j I``); ``1 / sigma_j^2`` is the smoothing parameter. A smooth in a latent's
regression (``eta ~ s(x)``, galamm's ``sl()``) has both parts multiplied by each row's
loading on the latent. The Laplace engine sees ordinary columns and blocks.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pandas as pd

from semgalamm.design.design import FloatArray, RandomBlock
from semgalamm.design.smooths import MixedSmooth, SmoothBasis, SmoothSpec, construct_smooth
from semgalamm.errors import DataError, SpecError, UnsupportedError
from semgalamm.spec.model_spec import ModelSpec
from semgalamm.syntax.nodes import Boolean, Call, Expr, Name, Number, SmoothTerm, String

_BASES = ("tp", "cr")
_OPTIONS = ("k", "bs", "by", "fx", "m")


@dataclass(frozen=True)
class SmoothDesign:
    """One smooth (one level of a factor ``by``) as it enters the design.

    label: the term's name, ``s(x)``, ``s(x):z`` (numeric ``by``), ``s(x):fa`` (level a of a
    factor ``by``), ``s(x):eta`` (a smooth of latent eta). basis, mixed: the constructed
    smooth and its mixed-model form. latent: index of the latent whose row loading multiplies
    it (None on the response). fixed_columns: its columns of X; blocks: its random blocks.
    """

    label: str
    basis: SmoothBasis
    mixed: MixedSmooth
    latent: int | None
    fixed_columns: tuple[int, ...]
    blocks: tuple[int, ...]

    @property
    def n_penalized(self) -> int:
        return sum(z.shape[1] for z in self.mixed.random)


@dataclass
class SmoothParts:
    """The smooths' contribution to a design: X columns, their names and latents, blocks."""

    X: FloatArray
    names: list[str]
    fixed_latent: list[int | None]
    blocks: list[RandomBlock]
    smooths: list[SmoothDesign]


def smooth_columns(spec: ModelSpec) -> list[str]:
    """Data columns read by the smooth terms (covariates and ``by`` variables)."""
    cols: list[str] = []
    for term, _ in spec.smooths:
        smooth = smooth_spec(term)
        cols += list(smooth.variables) + ([smooth.by] if smooth.by else [])
    return cols


def smooth_spec(term: SmoothTerm) -> SmoothSpec:
    """The parser's ``SmoothTerm`` as a :class:`SmoothSpec`, with the options mgcv's ``s()``
    and ``t2()`` take here: ``k``, ``bs`` ("tp", "cr"), ``by``, ``fx`` (``s`` only), ``m``."""
    if term.kind not in ("s", "t2"):
        raise UnsupportedError(
            f"The smooth '{term.text}' uses {term.kind}(), which semgalamm cannot fit yet. Use "
            "s() for one covariate or t2() for a tensor product (as gamm4 does)."
        )
    options = dict(term.options)
    unknown = [name for name in options if name not in _OPTIONS]
    if unknown:
        raise UnsupportedError(
            f"The smooth '{term.text}' has the option '{unknown[0]}', which semgalamm does not "
            f"support. Supported options: {', '.join(_OPTIONS)}."
        )
    k = _option(term, "k", options.get("k"), int)
    bs = _option(term, "bs", options.get("bs"), str)
    for basis in (bs,) if isinstance(bs, str) else bs or ():
        if basis not in _BASES:
            raise UnsupportedError(
                f"The smooth '{term.text}' asks for basis bs=\"{basis}\"; semgalamm has "
                f"{' and '.join(repr(b) for b in _BASES)} bases."
            )
    by = options.get("by")
    if by is not None and not isinstance(by, Name):
        raise SpecError(f"by= in '{term.text}' must name a column, as in s(x, by = z).")
    fx = options.get("fx", Boolean(False))
    if not isinstance(fx, Boolean):
        raise SpecError(f"fx= in '{term.text}' must be TRUE or FALSE.")
    if fx.value and term.kind == "t2":
        raise SpecError(f"'{term.text}': t2() has no fx option (as in mgcv). Use s(x, fx=TRUE).")
    m = _option(term, "m", options.get("m"), int)
    if isinstance(m, tuple):
        raise UnsupportedError(f"'{term.text}': m= takes one penalty order here.")
    if term.kind == "s" and (isinstance(k, tuple) or isinstance(bs, tuple)):
        raise SpecError(f"'{term.text}': s() takes one k and one bs; c(...) is for t2().")
    if term.kind == "s" and bs == "cr" and len(term.variables) > 1:
        raise SpecError(f"'{term.text}': bs=\"cr\" smooths one covariate. Use t2() for several.")
    for value, name in ((k, "k"), (bs, "bs")):
        if isinstance(value, tuple) and len(value) != len(term.variables):
            raise SpecError(
                f"'{term.text}': {name}=c(...) needs one value per covariate "
                f"({len(term.variables)})."
            )
    return SmoothSpec(term.kind, term.variables, bs=bs, k=k, by=by.name if by else None,
                      fx=fx.value, m=m)


def _option(term: SmoothTerm, name: str, value: Expr | None, kind: type):
    """A scalar option (number or string) or R's ``c(...)`` of them."""
    if value is None:
        return None
    values = value.args if isinstance(value, Call) and value.func == "c" else (value,)
    out = []
    for v in values:
        if kind is int and isinstance(v, Number) and float(v.value).is_integer():
            out.append(int(v.value))
        elif kind is str and isinstance(v, String):
            out.append(v.value)
        else:
            example = "k = 10" if kind is int else 'bs = "cr"'
            raise SpecError(f"{name}= in '{term.text}' must be written as in {example}.")
    return out[0] if len(out) == 1 and not isinstance(value, Call) else tuple(out)


def build_smooths(spec: ModelSpec, frame: pd.DataFrame, latent_index: dict[str, int],
                  first_column: int, first_block: int) -> SmoothParts:
    """Columns of X and blocks of Z for every smooth of ``spec``; positions count from
    ``first_column`` (X) and ``first_block`` (blocks)."""
    n = frame.shape[0]
    parts = SmoothParts(np.zeros((n, 0)), [], [], [], [])
    X_parts = []
    for term, latent in spec.smooths:
        k = latent_index.get(latent) if latent else None
        try:
            bases = construct_smooth(smooth_spec(term), frame)
        except NotImplementedError as exc:
            raise UnsupportedError(f"The smooth '{term.text}' cannot be built: {exc}.") from None
        except (ValueError, np.linalg.LinAlgError) as exc:
            raise DataError(f"The smooth '{term.text}' cannot be built from the data: {exc}. "
                            "Check the covariate or lower k.") from None
        for basis in bases:
            label = basis.label if latent is None else f"{basis.label}:{latent}"
            mixed = dataclasses.replace(basis, label=label).mixed_form()
            start = first_column + len(parts.names)
            columns = tuple(range(start, start + mixed.fixed.shape[1]))
            X_parts.append(mixed.fixed)
            parts.names += list(mixed.fixed_names)
            parts.fixed_latent += [k] * mixed.fixed.shape[1]
            block_ids = []
            for name, Z in zip(mixed.random_names, mixed.random, strict=True):
                block_ids.append(first_block + len(parts.blocks))
                parts.blocks.append(RandomBlock(
                    group=name, levels=("1",), index=np.zeros(n, dtype=np.intp),
                    columns=tuple(f"{name}.{j + 1}" for j in range(Z.shape[1])), z0=Z,
                    latent=(k,) * Z.shape[1], scalar=True,
                ))
            parts.smooths.append(SmoothDesign(label, basis, mixed, k, columns, tuple(block_ids)))
    if X_parts:
        parts.X = np.hstack(X_parts)
    return parts
