# References for adaptive Gauss-Hermite quadrature (fit(..., n_agq=)), tests/test_families_quadrature.py.
#
# How to run (from the repository root; needs R with lme4 and jsonlite; a few seconds):
#
#     Rscript tests/reference/quadrature_fits.R
#
# Writes tests/fixtures/quadrature.json: glmer(nAGQ = k) on cbpp (tests/data/cbpp.csv) for
# the logit and probit links. lme4's nAGQ > 1 deviance sums the deviance residuals, not -2
# log f(y): its logLik lacks the constant sum_i l_i(saturated) (lme4 refuses to compare it
# with glm()). `saturated_loglik` records that constant, sum_i (dev.resid_i / 2 + log f_i) at
# any mu, and `loglik_full` the log-likelihood with every constant (logLik + that constant
# for nAGQ > 1; for nAGQ = 1 lme4's logLik has every constant already).
suppressMessages({ library(lme4); library(jsonlite) })
cbpp <- read.csv("tests/data/cbpp.csv")
cbpp$herd <- factor(cbpp$herd); cbpp$period <- factor(cbpp$period)
saturated <- function(f) {
  fam <- family(f); mu <- fitted(f); n <- cbpp$size
  sum(fam$dev.resids(cbpp$incidence / n, mu, n)) / 2 +
    sum(dbinom(cbpp$incidence, n, mu, log = TRUE))
}
out <- list(versions = list(R = R.version.string, lme4 = as.character(packageVersion("lme4"))))
for (link in c("logit", "probit")) {
  for (k in c(1L, 5L, 15L)) {
    f <- glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), data = cbpp,
               family = binomial(link = link), nAGQ = k,
               control = glmerControl(optimizer = "bobyqa",
                                      optCtrl = list(maxfun = 1e5)))
    out[[sprintf("cbpp_%s_agq%d", link, k)]] <- list(
      call = sprintf("glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp, binomial(link = '%s'), nAGQ = %d)", link, k),
      logLik = as.numeric(logLik(f)), saturated_loglik = saturated(f),
      loglik_full = as.numeric(logLik(f)) + if (k > 1L) saturated(f) else 0,
      fixef = as.list(fixef(f)), se = as.list(sqrt(diag(as.matrix(vcov(f))))),
      sd_herd = attr(VarCorr(f)$herd, "stddev")[[1]])
  }
}
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE),
           "tests/fixtures/quadrature.json")
