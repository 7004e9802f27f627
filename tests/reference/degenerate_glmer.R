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
# lme4 version. Default glmer settings (nAGQ = 1, Laplace).
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
out$lme4_version <- as.character(packageVersion("lme4"))
out$R_version <- R.version.string
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE),
           "tests/fixtures/degenerate_glmer.json")
cat("wrote tests/fixtures/degenerate_glmer.json\n")
