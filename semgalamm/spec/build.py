"""ModelSyntax -> ModelSpec: statement meanings, defaults and the checks that need no data.

Default rules (lavaan's where lavaan has one):

* the first indicator of each latent has its loading fixed to 1 unless a modifier says
  otherwise (``NA*`` frees it, a number fixes it, a label or ``start()`` makes it free);
* latents whose disturbances vary at the same grouping level are correlated (one block with
  an unstructured covariance), unless ``f1 ~~ 0*f2`` removes the covariance;
* a latent's structural regression has no intercept (latent means are zero; the response's
  intercepts carry the location).
"""

from __future__ import annotations

from collections import defaultdict

from semgalamm.errors import SpecError, UnsupportedError
from semgalamm.spec.model_spec import (
    FixedPart,
    LoadingSpec,
    ModelSpec,
    RandomSpec,
    ResidualGroups,
    ResponseSpec,
)
from semgalamm.syntax.nodes import (
    BinomialResponse,
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
                zero_covariances |= _covariances(statement, latents)

    loadings = tuple(ld for m in measurements for ld in _loadings(m))
    responses = [r for r in regressions if _lhs_name(r) not in latents]
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
    for regression in regressions:
        latent = _lhs_name(regression) if regression is not response_statement else None
        part, blocks, smooth_terms = _regression_parts(regression, latent, latents)
        if part is not None:
            fixed.append(part)
        (latent_random if latent else random).extend(blocks)
        smooths.extend((s, latent) for s in smooth_terms)

    for latent in latents:
        varies = any(latent == p[1] for r in latent_random for p in r.parts)
        regressed = any(latent == s[1] for s in smooths) or any(latent == f.latent for f in fixed)
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
            raise SpecError(
                f"'{statement.lhs} ~~ ...' ({_where(statement.span)}): residual variance groups "
                f"belong to the observed response; write '{response.name} ~~ "
                f"{statement.terms[0].text}'."
            )
        residual = residual_groups(statement)
    return ModelSpec(
        response=response,
        fixed=tuple(fixed),
        random=tuple(random),
        loadings=loadings,
        latents=latents,
        smooths=tuple(smooths),
        residual=residual,
    )


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
        default_label = f"{measurement.latent}=~{ind.variable}[{ind.level}]" + (
            f":{ind.covariate}" if ind.covariate else ""
        )
        out.append(
            LoadingSpec(
                latent=measurement.latent,
                variable=ind.variable,
                level=ind.level,
                covariate=ind.covariate,
                fixed=fixed,
                label=mod.label or default_label,
                start=mod.start,
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


def _covariances(statement: Covariance, latents: tuple[str, ...]) -> set[frozenset[str]]:
    zeros = set()
    for term in statement.terms:
        mod = term.modifier
        if term.variable == statement.lhs and mod.is_empty:
            continue  # a variance that is free by default
        if mod.fixed == 0 and term.variable != statement.lhs:
            if statement.lhs in latents and term.variable in latents:
                zeros.add(frozenset((statement.lhs, term.variable)))
                continue
        raise UnsupportedError(
            f"The (co)variance '{statement.lhs} ~~ {term.variable}' ({_where(term.span)}) is "
            "not supported yet: only 'f1 ~~ 0*f2' between latent variables (to remove a "
            "covariance) can be written."
        )
    return zeros


def _regression_parts(
    regression: Regression, latent: str | None, latents: tuple[str, ...]
) -> tuple[FixedPart | None, list[RandomSpec], list[SmoothTerm]]:
    intercept = latent is None
    terms: list[str] = []
    blocks: list[RandomSpec] = []
    smooths: list[SmoothTerm] = []
    for term in regression.terms:
        if isinstance(term, Intercept):
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
            if not term.modifier.is_empty:
                raise UnsupportedError(
                    f"A modifier on the regression term '{term.text}' ({_where(term.span)}) is "
                    "not supported yet. Remove it."
                )
            if term.text in latents:
                raise UnsupportedError(
                    f"Regressions among latent variables ('{_lhs_name(regression)} ~ "
                    f"{term.text}', {_where(term.span)}) are not supported yet."
                )
            terms.append(_patsy_text(term.text))
    if latent is not None and not terms:
        return None, blocks, smooths
    return FixedPart(_formula(intercept, terms), latent), blocks, smooths


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
