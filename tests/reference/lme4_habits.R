# Reference fits for the lme4/glm habits users bring (offset(), weights =, fixed-effects-only
# GLMs, poly(), scale(), logical covariates), for tests/test_lme4_habits.py.
#
# How to run (from the repository root; needs R with lme4 and jsonlite, e.g. Debian's
# r-base-core r-cran-lme4 r-cran-jsonlite):
#
#     Rscript tests/reference/lme4_habits.R
#
# It reads the CSVs in tests/data (written by lme4_models.R from lme4's data sets) and
# writes tests/fixtures/lme4_habits.json: one object per case with
#   call       the R call
#   data       the CSV under tests/data
#   logLik     logLik(fit) (ML; the REML criterion / -2 for REML fits). glmer fits use
#              glmerControl(tolPwrss = 1e-10): with lme4's default (1e-7) PIRLS stops early
#              and its logLik is up to 1.2e-3 below the Laplace value at its own estimates
#              (grouseticks_poisson_weights); logLik_default is that default fit's logLik
#   fixef      named fixed effects (coef() for glm/lm), R's names and order
#   fixef_se   their standard errors (vcov)
#   theta      lme4's theta (relative Cholesky factors), absent for glm/lm
#   sigma      residual SD of Gaussian models
# Weights used by the cases are functions of the data written out in each case's "weights"
# note and recomputed by the test: w = 1 + Days %% 3 (sleepstudy), w = 1 + (row - 1) %% 2
# (grouseticks and cbpp's Poisson case, by row position). Every lme4 fit here converges
# without warnings.

suppressPackageStartupMessages({
  library(lme4)
  library(jsonlite)
})

stopifnot(file.exists("tests/reference/lme4_habits.R"))  # run from repo root

read_data <- function(name, factors) {
  d <- read.csv(file.path("tests/data", name), stringsAsFactors = FALSE)
  for (f in factors) {
    values <- d[[f]]
    levels <- as.character(sort(unique(values)))
    d[[f]] <- factor(as.character(values), levels = levels)
  }
  d
}

sleep <- read_data("sleepstudy.csv", "Subject")
sleep$w <- 1 + sleep$Days %% 3
sleep$late <- sleep$Days >= 5
cbpp <- read_data("cbpp.csv", c("herd", "period"))
cbpp$w <- 1 + (seq_len(nrow(cbpp)) - 1) %% 2
grouse <- read_data("grouseticks.csv", c("YEAR", "BROOD", "LOCATION"))
grouse$w <- 1 + (seq_len(nrow(grouse)) - 1) %% 2
verbagg <- read_data("VerbAgg.csv", c("Gender", "btype", "situ"))

summarise <- function(fit, call, data, weights = NULL) {
  is_merMod <- inherits(fit, "merMod")
  b <- if (is_merMod) fixef(fit) else coef(fit)
  out <- list(
    call = call,
    data = data,
    weights = weights,
    logLik = as.numeric(logLik(fit)),
    fixef = as.list(b),
    fixef_se = as.list(sqrt(diag(as.matrix(vcov(fit))))),
    theta = if (is_merMod) I(unname(getME(fit, "theta"))) else NULL,
    sigma = if (is_merMod && isLMM(fit)) sigma(fit) else
      if (inherits(fit, "lm") && !inherits(fit, "glm")) summary(fit)$sigma else NULL
  )
  out[!vapply(out, is.null, logical(1))]
}

cases <- list()
add <- function(id, call, data, fit, weights = NULL) {
  cases[[id]] <<- summarise(fit, call, data, weights)
  if (inherits(fit, "glmerMod")) {
    default <- update(fit, control = glmerControl())
    cases[[id]]$logLik_default <<- as.numeric(logLik(default))
  }
  if (inherits(fit, "merMod")) stopifnot(length(fit@optinfo$conv$lme4$messages) == 0)
  cat(sprintf("%-32s logLik = %.6f\n", id, cases[[id]]$logLik))
}
tight <- glmerControl(tolPwrss = 1e-10)

# ----------------------------------------------------------- offset() and weights = ---

add("cbpp_poisson_offset",
    "glmer(incidence ~ period + offset(log(size)) + (1 | herd), cbpp, family = poisson)",
    "cbpp.csv",
    glmer(incidence ~ period + offset(log(size)) + (1 | herd), cbpp, family = poisson,
          control = tight))

add("cbpp_binomial_weights",
    "glmer(incidence / size ~ period + (1 | herd), cbpp, family = binomial, weights = size)",
    "cbpp.csv",
    glmer(incidence / size ~ period + (1 | herd), cbpp, family = binomial, weights = size,
          control = tight),
    "size")

add("sleepstudy_weights",
    "lmer(Reaction ~ Days + (Days | Subject), sleepstudy, weights = w, REML = FALSE)",
    "sleepstudy.csv",
    lmer(Reaction ~ Days + (Days | Subject), sleep, weights = w, REML = FALSE),
    "1 + Days %% 3")

add("sleepstudy_weights_reml",
    "lmer(Reaction ~ Days + (Days | Subject), sleepstudy, weights = w, REML = TRUE)",
    "sleepstudy.csv",
    lmer(Reaction ~ Days + (Days | Subject), sleep, weights = w, REML = TRUE),
    "1 + Days %% 3")

# (1 | BROOD) with these weights does not converge in lme4 (max|grad| 0.07); LOCATION does.
add("grouseticks_poisson_weights",
    "glmer(TICKS ~ YEAR + cHEIGHT + (1 | LOCATION), grouseticks, family = poisson, weights = w)",
    "grouseticks.csv",
    glmer(TICKS ~ YEAR + cHEIGHT + (1 | LOCATION), grouse, family = poisson, weights = w,
          control = tight),
    "1 + (row - 1) %% 2")

add("cbpp_poisson_weights",
    "glmer(incidence ~ period + (1 | herd), cbpp, family = poisson, weights = w)",
    "cbpp.csv",
    glmer(incidence ~ period + (1 | herd), cbpp, family = poisson, weights = w,
          control = tight),
    "1 + (row - 1) %% 2")

# ------------------------------------------------------------ fixed effects only: glm ---

add("glm_cbpp_poisson", "glm(incidence ~ period, family = poisson, cbpp)", "cbpp.csv",
    glm(incidence ~ period, family = poisson, cbpp))

add("glm_cbpp_poisson_offset",
    "glm(incidence ~ period + offset(log(size)), family = poisson, cbpp)", "cbpp.csv",
    glm(incidence ~ period + offset(log(size)), family = poisson, cbpp))

add("glm_cbpp_binomial",
    "glm(cbind(incidence, size - incidence) ~ period, family = binomial, cbpp)", "cbpp.csv",
    glm(cbind(incidence, size - incidence) ~ period, family = binomial, cbpp))

add("glm_cbpp_binomial_weights",
    "glm(incidence / size ~ period, family = binomial, cbpp, weights = size)", "cbpp.csv",
    glm(incidence / size ~ period, family = binomial, cbpp, weights = size), "size")

add("glm_verbagg_binary", "glm(r2 ~ Anger + Gender, family = binomial, VerbAgg)",
    "VerbAgg.csv", glm(r2 ~ Anger + Gender, family = binomial, verbagg))

add("glm_grouseticks_poisson_weights",
    "glm(TICKS ~ YEAR + cHEIGHT, family = poisson, grouseticks, weights = w)",
    "grouseticks.csv",
    glm(TICKS ~ YEAR + cHEIGHT, family = poisson, grouse, weights = w), "1 + (row - 1) %% 2")

add("lm_sleepstudy_weights", "lm(Reaction ~ Days, sleepstudy, weights = w)",
    "sleepstudy.csv", lm(Reaction ~ Days, sleep, weights = w), "1 + Days %% 3")

# ---------------------------------------------------- poly(), scale(), a logical column ---

add("sleepstudy_poly",
    "lmer(Reaction ~ poly(Days, 2) + (1 | Subject), sleepstudy, REML = FALSE)",
    "sleepstudy.csv",
    lmer(Reaction ~ poly(Days, 2) + (1 | Subject), sleep, REML = FALSE))

add("sleepstudy_scale",
    "lmer(Reaction ~ scale(Days) + (1 | Subject), sleepstudy, REML = FALSE)",
    "sleepstudy.csv",
    lmer(Reaction ~ scale(Days) + (1 | Subject), sleep, REML = FALSE))

add("sleepstudy_logical",
    "lmer(Reaction ~ late + (1 | Subject), sleepstudy, REML = FALSE)  # late = Days >= 5",
    "sleepstudy.csv",
    lmer(Reaction ~ late + (1 | Subject), sleep, REML = FALSE))

p <- poly(sleep$Days, 2)
poly_values <- list(
  x = I(0:9),
  values = unname(predict(p, 0:9)),
  alpha = I(attr(p, "coefs")$alpha),
  norm2 = I(attr(p, "coefs")$norm2),
  new_x = I(c(-1, 2.5, 12)),
  new_values = unname(predict(p, c(-1, 2.5, 12)))
)

out <- list(
  versions = list(R = R.version.string, lme4 = as.character(packageVersion("lme4"))),
  cases = cases,
  poly_sleepstudy_days = poly_values
)
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE, null = "null"),
           "tests/fixtures/lme4_habits.json")
cat("wrote tests/fixtures/lme4_habits.json\n")
