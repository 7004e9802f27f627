"""ModelSyntax -> ModelSpec: statement meanings, defaults and the checks that need no data.

Default rules (lavaan's where lavaan has one):

* the first indicator of each latent has its loading fixed to 1 unless a modifier says
  otherwise (``NA*`` frees it, a number fixes it, a label or ``start()`` makes it free);
* latents whose disturbances vary at the same grouping level are correlated (one block with
  an unstructured covariance), unless ``f1 ~~ 0*f2`` removes the covariance;
* a latent's structural regression has no intercept (latent means are zero; the response's
  intercepts carry the location);
* ``f2 ~ f1`` between latents is an entry of B in eta = B eta + h(w) + zeta, free with start 0
  unless a modifier says otherwise (``0.5*f1`` fixes it, ``b*f1`` labels it); the disturbance
  of a latent regressed on other latents (endogenous) is uncorrelated with every other latent
  unless ``f2 ~~ f3`` says otherwise (lavaan's default).
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from semgalamm.design.formulas import check_formula
from semgalamm.errors import SpecError, UnsupportedError
from semgalamm.spec.model_spec import (
    FixedPart,
    LoadingSpec,
    ModelSpec,
    RandomSpec,
    ResidualGroups,
    ResponseSpec,
    StructuralSpec,
)
from semgalamm.syntax.nodes import (
    BinaryOp,
    BinomialResponse,
    Call,
    Constraint,
    Covariance,
    Definition,
    FixedTerm,
    Intercept,
    Measurement,
    ModelSyntax,
    Name,
    RandomTerm,
    Regression,
    SmoothTerm,
    SourceSpan,
    Unsupported,
    expression_names,
)


def _where(span: SourceSpan) -> str:
    return f"line {span.line}, column {span.column}"


def _patsy_text(text: str) -> str:
    """R formula text -> patsy text (R's power ``^`` is patsy's ``**``)."""
    return text.replace("^", "**")


def _formula(intercept: bool, terms: list[str]) -> str:
    return " + ".join(["1" if intercept else "0", *terms])


def build_spec(syntax: ModelSyntax) -> ModelSpec:
    """Give the statements of a parsed model string their meaning."""
    measurements = [s for s in syntax.statements if isinstance(s, Measurement)]
    regressions = [s for s in syntax.statements if isinstance(s, Regression)]
    latents = tuple(dict.fromkeys(m.latent for m in measurements))
    zero_covariances: set[frozenset[str]] = set()
    free_covariances: set[frozenset[str]] = set()
    residual_statements: list[Covariance] = []

    for statement in syntax.statements:
        if isinstance(statement, Unsupported):
            raise UnsupportedError(
                f"The operator '{statement.operator}' ({_where(statement.span)}: "
                f"'{statement.text}') is part of lavaan's syntax but semgalamm cannot estimate "
                "it yet. Remove the statement."
            )
        if isinstance(statement, (Definition, Constraint)):
            raise UnsupportedError(
                f"Defined parameters and constraints ({_where(statement.span)}: "
                f"'{statement.text}') are not supported yet. Use equal labels for equality "
                "constraints between loadings."
            )
        if isinstance(statement, Covariance):
            if any(isinstance(t, RandomTerm) for t in statement.terms):
                residual_statements.append(statement)
            else:
                zeros, frees = _covariances(statement, latents)
                zero_covariances |= zeros
                free_covariances |= frees

    loadings = tuple(ld for m in measurements for ld in _loadings(m))
    responses = [r for r in regressions if _lhs_name(r) not in latents]
    _check_observed_lhs(responses, latents)
    if not responses:
        raise SpecError(
            "The model has no regression of an observed response. Add one, e.g. "
            "'y ~ x + (1 | id)'."
        )
    if len(responses) > 1:
        names = ", ".join(f"'{_lhs_name(r)}'" for r in responses)
        raise UnsupportedError(
            f"The model regresses several observed responses ({names}); semgalamm fits long "
            "data with one response column. Stack the responses into one column and use "
            "indicators 'col[level]' to tell them apart."
        )
    response_statement = responses[0]
    fixed: list[FixedPart] = []
    random: list[RandomSpec] = []
    smooths = []
    latent_random: list[RandomSpec] = []
    structural: list[StructuralSpec] = []
    offsets: list[str] = []
    for regression in regressions:
        latent = _lhs_name(regression) if regression is not response_statement else None
        part, blocks, smooth_terms, entries = _regression_parts(regression, latent, latents,
                                                                offsets)
        if part is not None:
            fixed.append(part)
        (latent_random if latent else random).extend(blocks)
        smooths.extend((s, latent) for s in smooth_terms)
        structural.extend(entries)
    _check_structural(structural)
    for endogenous in dict.fromkeys(e.lhs for e in structural):
        zero_covariances |= {frozenset((endogenous, other)) for other in latents
                             if other != endogenous} - free_covariances

    for latent in latents:
        varies = any(latent == p[1] for r in latent_random for p in r.parts)
        regressed = (any(latent == s[1] for s in smooths) or any(latent == f.latent for f in fixed)
                     or any(latent == e.lhs for e in structural))
        if not varies and not regressed:
            raise SpecError(
                f"The latent variable '{latent}' has no level: say where it varies with a "
                f"random term in its regression, e.g. '{latent} ~ (1 | id)'."
            )
        _check_identified(latent, loadings)
    random.extend(_merge_latent_blocks(latent_random, zero_covariances))
    response = _response(response_statement)
    if len(residual_statements) > 1:
        raise SpecError(
            f"The residual variance groups are given twice ({_where(residual_statements[1].span)})"
            "; write one statement, e.g. 'y ~~ (1 | item)'."
        )
    residual = None
    for statement in residual_statements:
        if statement.lhs != response.name:
            term = next(t for t in statement.terms if isinstance(t, RandomTerm))
            raise SpecError(
                f"'{statement.lhs} ~~ ...' ({_where(statement.span)}): residual variance groups "
                f"belong to the observed response; write '{response.name} ~~ {term.text}'."
            )
        residual = residual_groups(statement)
    spec = ModelSpec(
        response=response,
        fixed=tuple(fixed),
        random=tuple(random),
        loadings=loadings,
        latents=latents,
        smooths=tuple(smooths),
        residual=residual,
        structural=tuple(structural),
        offsets=tuple(offsets),
    )
    _check_formulas(spec)
    _check_invertible(spec)
    return spec


def _check_formulas(spec: ModelSpec) -> None:
    """Every formula term may use only columns, numbers, arithmetic and the allowed
    functions (design/formulas.py): checked here, before any data are read."""
    for part in spec.fixed:
        check_formula(part.formula)
    for block in spec.random:
        for formula, _ in block.parts:
            check_formula(formula)
    for text in (*spec.offsets, *(ld.covariate for ld in spec.loadings if ld.covariate)):
        check_formula(f"0 + I({text})" if text in spec.offsets else f"0 + {text}")


def _lhs_name(regression: Regression) -> str:
    lhs = regression.lhs
    return lhs.text if isinstance(lhs, BinomialResponse) else lhs.name


def _response(regression: Regression) -> ResponseSpec:
    lhs = regression.lhs
    if isinstance(lhs, BinomialResponse):
        return ResponseSpec(lhs.text, lhs.successes, lhs.failures)
    return ResponseSpec(lhs.name)


def _loadings(measurement: Measurement) -> list[LoadingSpec]:
    out = []
    for position, ind in enumerate(measurement.indicators):
        if ind.level is None:
            raise UnsupportedError(
                f"The indicator '{ind.variable}' of '{measurement.latent}' "
                f"({_where(ind.span)}) names a column (wide data); semgalamm fits long data "
                f"for now. Stack the indicators into one response column and write them as "
                f"'item[{ind.variable}]'."
            )
        mod = ind.modifier
        first = position == 0 and ind.covariate is None
        if mod.fixed is not None:
            fixed: float | None = mod.fixed
        elif mod.free or mod.label is not None or mod.start is not None or not first:
            fixed = None
        else:
            fixed = 1.0
        covariate = None if ind.covariate is None else _patsy_text(ind.covariate)
        default_label = f"{measurement.latent}=~{ind.variable}[{ind.level}]" + (
            f":{ind.covariate}" if ind.covariate else ""
        )
        out.append(
            LoadingSpec(
                latent=measurement.latent,
                variable=ind.variable,
                level=ind.level,
                covariate=covariate,
                fixed=fixed,
                label=mod.label or default_label,
                start=mod.start,
                covariate_name=ind.covariate if ind.covariate != covariate else None,
            )
        )
    return out


def _check_identified(latent: str, loadings: tuple[LoadingSpec, ...]) -> None:
    own = [ld for ld in loadings if ld.latent == latent]
    if own and all(ld.fixed is None for ld in own):
        raise SpecError(
            f"The latent variable '{latent}' has no fixed loading and a free variance, so its "
            "scale is not identified. Fix one loading (e.g. '1*item[1]') or remove 'NA*'."
        )


def residual_groups(statement: Covariance) -> ResidualGroups:
    """``y ~~ (1 | g)`` or ``y ~~ (0 + selector | g)``: Gaussian residual variances by group."""
    if len(statement.terms) != 1 or not isinstance(statement.terms[0], RandomTerm):
        raise SpecError(
            f"Residual variance groups ({_where(statement.span)}) take one term '(1 | group)', "
            "as in 'y ~~ (1 | item)'; for groups defined by two columns write '(1 | a:b)'."
        )
    term = statement.terms[0]
    selector = None
    if term.terms:
        if term.intercept is not False or len(term.terms) != 1 or \
                not isinstance(term.terms[0].expr, Name):
            raise SpecError(
                f"'{term.text}' ({_where(term.span)}): residual variance groups are written "
                "'(1 | group)', or '(0 + indicator | group)' with a 0/1 column marking the rows "
                "that have them."
            )
        selector = term.terms[0].expr.name
    if len(term.groups) != 1:
        raise SpecError(
            f"'{term.text}' ({_where(term.span)}): residual variance groups need one grouping "
            "factor; nesting '/' is not meaningful here. Use '(1 | a:b)' for the combinations."
        )
    return ResidualGroups(term.groups[0], selector, term.text)


def _covariances(statement: Covariance, latents: tuple[str, ...]
                 ) -> tuple[set[frozenset[str]], set[frozenset[str]]]:
    """Pairs of latents whose covariance ``~~`` removes (``f1 ~~ 0*f2``) and keeps
    (``f1 ~~ f2``, needed only for a latent regressed on others)."""
    zeros, frees = set(), set()
    for term in statement.terms:
        mod = term.modifier
        if term.variable == statement.lhs and mod.is_empty:
            continue  # a variance that is free by default
        between_latents = statement.lhs in latents and term.variable in latents
        if between_latents and term.variable != statement.lhs:
            if mod.fixed == 0:
                zeros.add(frozenset((statement.lhs, term.variable)))
                continue
            if mod.is_empty:
                frees.add(frozenset((statement.lhs, term.variable)))
                continue
        raise UnsupportedError(
            f"The (co)variance '{statement.lhs} ~~ {term.variable}' ({_where(term.span)}) is "
            "not supported yet: only 'f1 ~~ 0*f2' (remove a covariance) and 'f1 ~~ f2' (keep "
            "it) between latent variables can be written."
        )
    return zeros, frees


def _offset(term: FixedTerm, latent: str | None) -> str | None:
    """The expression of ``offset(expr)`` (patsy text), None for any other term."""
    expr = term.expr
    if not (isinstance(expr, Call) and expr.func == "offset"):
        return None
    if latent is not None:
        raise SpecError(
            f"'{term.text}' ({_where(term.span)}) is in the regression of latent '{latent}'; "
            "an offset belongs to the observed response's formula, e.g. "
            "'y ~ x + offset(log(n))'."
        )
    if len(expr.args) != 1 or expr.kwargs or not term.modifier.is_empty:
        raise SpecError(
            f"'{term.text}' ({_where(term.span)}): offset() takes one expression of the "
            "data's columns, as in offset(log(size))."
        )
    inner = term.text[term.text.index("(") + 1: term.text.rindex(")")].strip()
    return _patsy_text(inner)


def _regression_parts(
    regression: Regression, latent: str | None, latents: tuple[str, ...],
    offsets: list[str] | None = None,
) -> tuple[FixedPart | None, list[RandomSpec], list[SmoothTerm], list[StructuralSpec]]:
    intercept = latent is None
    terms: list[str] = []
    blocks: list[RandomSpec] = []
    smooths: list[SmoothTerm] = []
    structural: list[StructuralSpec] = []
    for term in regression.terms:
        if isinstance(term, Intercept):
            if not term.modifier.is_empty:
                raise UnsupportedError(
                    f"A modifier on the intercept ({_where(term.span)}) belongs to models on "
                    "wide data; in long data write '0 +' to drop an intercept."
                )
            if latent is not None and term.present:
                raise SpecError(
                    f"The regression of latent '{latent}' has an intercept "
                    f"({_where(term.span)}); latent means are fixed at 0 and the response's "
                    "intercepts carry the location. Remove the '1'."
                )
            intercept = term.present and latent is None
        elif isinstance(term, RandomTerm):
            blocks.extend(_random_blocks(term, latent))
        elif isinstance(term, SmoothTerm):
            smooths.append(term)
        elif isinstance(term, FixedTerm):
            offset = _offset(term, latent)
            if offset is not None:
                if offsets is not None:
                    offsets.append(offset)
                continue
            entry = _structural_term(term, latent, latents) if latent is not None else None
            if entry is not None:
                structural.append(entry)
                continue
            if not term.modifier.is_empty:
                raise UnsupportedError(
                    f"A modifier on the regression term '{term.text}' ({_where(term.span)}) is "
                    "not supported yet. Remove it."
                )
            terms.append(_patsy_text(term.text))
    if latent is not None and not terms:
        return None, blocks, smooths, structural
    return FixedPart(_formula(intercept, terms), latent), blocks, smooths, structural


def _structural_term(term: FixedTerm, latent: str, latents: tuple[str, ...]
                     ) -> StructuralSpec | None:
    """``f1``, ``0.5*f1``, ``b*f1``, ``start(0.3)*f1`` in the regression of latent ``latent``:
    an entry of B; None for a term without latent variables (an h(w) covariate)."""
    expr, label = term.expr, term.modifier.label
    if isinstance(expr, BinaryOp) and expr.op == "*" and isinstance(expr.left, Name) \
            and isinstance(expr.right, Name) and expr.right.name in latents \
            and expr.left.name not in latents:
        if label is not None and label != expr.left.name:
            raise SpecError(
                f"The term '{term.text}' ({_where(term.span)}) has two labels; keep one."
            )
        expr, label = expr.right, expr.left.name
    if not isinstance(expr, Name) or expr.name not in latents:
        named = [n for n in expression_names(expr) if n in latents]
        if named:
            raise UnsupportedError(
                f"The term '{term.text}' ({_where(term.span)}) uses latent '{named[0]}' in an "
                "expression; interactions and functions of latent variables are not supported. "
                f"A regression on a latent is written '{named[0]}', 'b*{named[0]}' (label) or "
                f"'0.5*{named[0]}' (fixed value)."
            )
        return None
    rhs = expr.name
    mod = term.modifier
    if mod.lower is not None or mod.upper is not None:
        raise UnsupportedError(
            f"Bounds on the latent regression '{latent} ~ {rhs}' ({_where(term.span)}) are not "
            "supported. Remove lower()/upper()."
        )
    if rhs == latent:
        raise SpecError(
            f"'{latent} ~ {rhs}' ({_where(term.span)}) regresses a latent variable on itself. "
            "Remove the term."
        )
    fixed = None if mod.free or label is not None else mod.fixed
    return StructuralSpec(lhs=latent, rhs=rhs, fixed=fixed, label=label or f"{latent}~{rhs}",
                          start=mod.start)


def _check_observed_lhs(responses: list[Regression], latents: tuple[str, ...]) -> None:
    """A regression whose left side is not a latent must not name latents on its right."""
    for regression in responses:
        for term in regression.terms:
            if not isinstance(term, FixedTerm):
                continue
            named = [n for n in expression_names(term.expr) if n in latents]
            if not named:
                continue
            lhs = _lhs_name(regression)
            raise SpecError(
                f"'{lhs} ~ {term.text}' ({_where(term.span)}): '{named[0]}' is a latent "
                f"variable but '{lhs}' is not (it has no '=~' statement). On long data the "
                f"response's rows load on a latent through '=~' ('{named[0]} =~ item[1] + "
                f"...'); a latent regressed on '{named[0]}' needs indicators of its own, "
                f"'{lhs} =~ item[...]'."
            )


def _check_structural(structural: list[StructuralSpec]) -> None:
    seen: set[tuple[str, str]] = set()
    for entry in structural:
        if (entry.lhs, entry.rhs) in seen:
            raise SpecError(
                f"The regression '{entry.lhs} ~ {entry.rhs}' is written twice; write each "
                "latent regression once."
            )
        seen.add((entry.lhs, entry.rhs))


def _check_invertible(spec: ModelSpec) -> None:
    """I - B must be invertible at the fixed values and the starting values."""
    if not spec.structural:
        return
    values = spec.free_parameters()
    B = spec.structural_matrix(values)
    M = np.eye(len(spec.latents)) - B
    if abs(np.linalg.det(M)) > 1e-8 and np.linalg.cond(M) < 1e10:
        return
    cycle = _cycle(spec, B)
    entries = ", ".join(
        f"'{e.lhs} ~ {e.rhs}' = {e.fixed if e.fixed is not None else values[e.label]:g}"
        + (" (fixed)" if e.fixed is not None else " (start)")
        for e in spec.structural if e.lhs in cycle and e.rhs in cycle
    )
    raise SpecError(
        f"The regressions among latent variables form the cycle {' -> '.join(cycle)} "
        f"(each regressed on the next), and with {entries} the matrix I - B is singular: "
        "eta = B eta + zeta has no unique solution. Change a fixed value or give a free "
        "coefficient another starting value (start(0.1)*f)."
    )


def _cycle(spec: ModelSpec, B: np.ndarray) -> list[str]:
    """A cycle of nonzero entries of B, as latent names with the first repeated at the end."""
    names = spec.latents
    k = len(names)

    def walk(path: list[int]) -> list[int] | None:
        for j in np.flatnonzero(B[path[-1]]):
            if j == path[0]:
                return path + [j]
            if j not in path and j > path[0]:
                found = walk(path + [int(j)])
                if found:
                    return found
        return None

    for start in range(k):
        found = walk([start])
        if found:
            return [names[i] for i in found]
    return list(names)


def _random_blocks(term: RandomTerm, latent: str | None) -> list[RandomSpec]:
    intercept = term.intercept is not False
    columns = [_patsy_text(t.text) for t in term.terms]
    if not intercept and not columns:
        raise SpecError(
            f"The random term '{term.text}' ({_where(term.span)}) has no columns: write "
            "'(1 | g)' for a random intercept."
        )
    formula = _formula(intercept, columns)
    return [
        RandomSpec(group=group, parts=((formula, latent),), correlated=term.correlated,
                   text=term.text)
        for group in term.groups
    ]


def _merge_latent_blocks(
    blocks: list[RandomSpec], zero_covariances: set[frozenset[str]]
) -> list[RandomSpec]:
    """One block per grouping level for correlated latents (unstructured covariance)."""
    by_group: dict[tuple[str, ...], list[RandomSpec]] = defaultdict(list)
    merged: list[RandomSpec] = []
    for block in blocks:
        (by_group[block.group] if block.correlated else merged).append(block)
    for group, members in by_group.items():
        components: list[list[RandomSpec]] = []
        for block in members:
            latent = block.parts[0][1]
            home = next(
                (c for c in components
                 if all(frozenset((latent, m.parts[0][1])) not in zero_covariances for m in c)),
                None,
            )
            if home is None:
                components.append([block])
            else:
                home.append(block)
        for component in components:
            merged.append(
                RandomSpec(
                    group=group,
                    parts=tuple(p for b in component for p in b.parts),
                    correlated=True,
                    text=" + ".join(b.text for b in component),
                )
            )
    return merged
