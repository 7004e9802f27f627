# glmer fits of the Poisson models of issue 10 (semgalamm once reported a wrong optimum for
# them as converged), for tests/test_degenerate.py.
#
# How to run (from the repository root; needs R with lme4 and jsonlite):
#
#     .venv/bin/python tests/reference/degenerate_data.py   # writes tests/data/degenerate_poisson.csv
#     Rscript tests/reference/degenerate_glmer.R
#
# It writes tests/fixtures/degenerate_glmer.json, one object per case with glmer's
# logLik, fixef, fixef_se (sqrt(diag(vcov))), theta, its convergence messages, and the
# lme4 version (default settings: nAGQ = 1, Laplace), then the lmer, glmer and nlme::gls
# fits of the degenerate-looking models below.
suppressMessages({library(lme4); library(jsonlite)})
d <- read.csv("tests/data/degenerate_poisson.csv")
d$g <- factor(d$g)
cases <- list(
  poisson_mean100 = cnt ~ x + (1 | g),
  poisson_times1000 = cnt1000 ~ x + (1 | g),
  poisson_mean100_re = cnt_re ~ x + (1 | g)
)
out <- list()
for (case in names(cases)) {
  fit <- glmer(cases[[case]], data = d, family = poisson)
  out[[case]] <- list(
    formula = deparse(cases[[case]]),
    logLik = as.numeric(logLik(fit)),
    fixef_names = names(fixef(fit)),
    fixef = unname(fixef(fit)),
    fixef_se = unname(sqrt(diag(as.matrix(vcov(fit))))),
    theta = unname(getME(fit, "theta")),
    messages = as.list(fit@optinfo$conv$lme4$messages),
    singular = isSingular(fit)
  )
}
# Degenerate-looking models that have a right answer (tests/test_degenerate.py):
# covariates on very different scales (lme4 warns, does not drop a column), a binomial
# model without fixed effects, and Gaussian residual variances by item beside 20 fixed
# group means (a GLS with nlme's varIdent, no random effects).
d$xb <- 1e8 * d$x
d$xs <- 1e-8 * d$z
fit <- lmer(y ~ xb + xs + (1 | g), data = d, REML = FALSE)
out$lmer_scales <- list(
  formula = "y ~ xb + xs + (1 | g)", logLik = as.numeric(logLik(fit)),
  fixef = unname(fixef(fit)), theta = unname(getME(fit, "theta")),
  messages = as.list(c(fit@optinfo$warnings, fit@optinfo$conv$lme4$messages)))
fit <- glmer(b ~ 0 + (1 | g), data = d, family = binomial)
out$glmer_no_fixed <- list(
  formula = "b ~ 0 + (1 | g)", logLik = as.numeric(logLik(fit)),
  theta = unname(getME(fit, "theta")))
suppressMessages(library(nlme))
d$item <- factor(d$item)
fit <- gls(y ~ g, data = d, weights = varIdent(form = ~ 1 | item), method = "ML")
out$gls_varident_groups <- list(
  formula = "gls(y ~ g, weights = varIdent(form = ~ 1 | item), method = 'ML')",
  logLik = as.numeric(logLik(fit)), coef = unname(coef(fit)),
  sd_ratios = unname(coef(fit$modelStruct$varStruct, unconstrained = FALSE)),
  sigma = fit$sigma)
out$lme4_version <- as.character(packageVersion("lme4"))
out$R_version <- R.version.string
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE),
           "tests/fixtures/degenerate_glmer.json")
cat("wrote tests/fixtures/degenerate_glmer.json\n")
