# Reference numbers for semgalamm's inference methods (predict, residuals, confint profile).
#
# How to run (from the repository root; needs R with lme4 and jsonlite):
#
#     Rscript tests/reference/inference_fits.R
#
# It writes tests/fixtures/inference.json, read by tests/test_inference_*.py.
# Data: the CSVs shipped with semgalamm (sleepstudy, cbpp) and tests/data/Penicillin.csv.
# Every fit is by maximum likelihood (REML = FALSE), default optimizers, nAGQ = 1, except
# sleepstudy_reml (REML = TRUE: lme4 profiles a REML fit on the deviance of its ML refit,
# devfun2's refitML, so its profile intervals are those of the ML fit).
#
# Fields, per model:
#   predict_conditional   predict(fit) (link scale; lmer: the mean)
#   predict_population    predict(fit, re.form = NA)
#   predict_response      predict(fit, type = "response") (GLMMs)
#   newdata, predict_new  predict(fit, newdata, allow.new.levels = TRUE), link scale
#   theta, beta           lme4's estimates (tests evaluate our predictions at them)
#   residuals             residuals(fit, type = t) for response, pearson, deviance, working
#   se_population         sqrt(diag(X vcov(fit) X')): the population-level link-scale SE
#   cbpp_probit, ticks_nb residuals with non-canonical links (glmer.nb: size = its theta)
#   gamm4_smooth          gamm4(y ~ s(x), REML = FALSE): predict(fit$gam, newdata,
#                         se.fit = TRUE) (mgcv's Vp, the posterior covariance)
#   profile               confint(fit, method = "profile", oldNames = FALSE): parameter,
#                         lower, upper (SDs and correlations of random effects, sigma,
#                         fixed effects)

suppressPackageStartupMessages({
  library(lme4)
  library(jsonlite)
})
stopifnot(file.exists("tests/reference/inference_fits.R"))

sleep <- read.csv("semgalamm/datasets/data/sleepstudy.csv")
sleep$Subject <- factor(sleep$Subject)
cbpp <- read.csv("semgalamm/datasets/data/cbpp.csv")
cbpp$herd <- factor(cbpp$herd, levels = as.character(1:15))
cbpp$period <- factor(cbpp$period, levels = as.character(1:4))
penicillin <- read.csv("tests/data/Penicillin.csv")
penicillin$plate <- factor(penicillin$plate)
penicillin$sample <- factor(penicillin$sample)

residual_types <- c("response", "pearson", "deviance", "working")
residual_list <- function(fit) {
  out <- lapply(residual_types, function(t) unname(residuals(fit, type = t)))
  names(out) <- residual_types
  out
}
profile_table <- function(fit) {
  ci <- suppressWarnings(confint(fit, method = "profile", oldNames = FALSE))
  list(parameter = rownames(ci), lower = unname(ci[, 1]), upper = unname(ci[, 2]))
}
se_population <- function(fit) {
  X <- getME(fit, "X")
  unname(sqrt(rowSums((X %*% as.matrix(vcov(fit))) * X)))
}

out <- list()

# ---- sleepstudy: correlated random intercept and slope ----------------------
fm <- lmer(Reaction ~ Days + (Days | Subject), sleep, REML = FALSE)
sleep_new <- data.frame(Days = c(0, 5, 9, 2), Subject = c("308", "309", "new1", "new2"))
out$sleepstudy <- list(
  model = "Reaction ~ Days + (Days | Subject)",
  logLik = as.numeric(logLik(fm)),
  theta = unname(getME(fm, "theta")),
  beta = unname(fixef(fm)),
  predict_conditional = unname(predict(fm)),
  predict_population = unname(predict(fm, re.form = NA)),
  newdata = sleep_new,
  predict_new = unname(predict(fm, newdata = sleep_new, allow.new.levels = TRUE)),
  residuals = residual_list(fm),
  se_population = se_population(fm),
  profile = profile_table(fm)
)

# ---- sleepstudy: random intercept only (docs/inference.md) -------------------
fi <- lmer(Reaction ~ Days + (1 | Subject), sleep, REML = FALSE)
out$sleepstudy_intercept <- list(
  model = "Reaction ~ Days + (1 | Subject)",
  logLik = as.numeric(logLik(fi)),
  profile = profile_table(fi)
)

# ---- sleepstudy by REML: profile intervals -----------------------------------
fr <- lmer(Reaction ~ Days + (Days | Subject), sleep, REML = TRUE)
out$sleepstudy_reml <- list(
  model = "Reaction ~ Days + (Days | Subject)",
  REML = TRUE,
  REMLcrit = REMLcrit(fr),
  profile = profile_table(fr)
)

# ---- Penicillin: crossed random intercepts ----------------------------------
fp <- lmer(diameter ~ 1 + (1 | plate) + (1 | sample), penicillin, REML = FALSE)
out$penicillin <- list(
  model = "diameter ~ 1 + (1 | plate) + (1 | sample)",
  logLik = as.numeric(logLik(fp)),
  profile = profile_table(fp)
)

# ---- cbpp: binomial with trials ---------------------------------------------
gm <- glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp,
            family = binomial)
cbpp_new <- data.frame(period = c("1", "2", "4", "3"), herd = c("1", "7", "new", "new"),
                       size = c(10, 10, 10, 20), incidence = c(0, 0, 0, 0))
cbpp_new$period <- factor(cbpp_new$period, levels = as.character(1:4))
out$cbpp <- list(
  model = "cbind(incidence, size - incidence) ~ period + (1 | herd)",
  logLik = as.numeric(logLik(gm)),
  theta = unname(getME(gm, "theta")),
  beta = unname(fixef(gm)),
  predict_conditional = unname(predict(gm)),
  predict_population = unname(predict(gm, re.form = NA)),
  predict_response = unname(predict(gm, type = "response")),
  predict_population_response = unname(predict(gm, re.form = NA, type = "response")),
  newdata = cbpp_new[, c("period", "herd")],
  predict_new = unname(predict(gm, newdata = cbpp_new, allow.new.levels = TRUE)),
  residuals = residual_list(gm),
  se_population = se_population(gm),
  profile = profile_table(gm)
)

# ---- cbpp as Poisson counts with an offset ----------------------------------
pm <- glmer(incidence ~ period + offset(log(size)) + (1 | herd), cbpp, family = poisson)
out$cbpp_poisson <- list(
  model = "incidence ~ period + offset(log(size)) + (1 | herd)",
  logLik = as.numeric(logLik(pm)),
  theta = unname(getME(pm, "theta")),
  beta = unname(fixef(pm)),
  predict_conditional = unname(predict(pm)),
  predict_population = unname(predict(pm, re.form = NA)),
  residuals = residual_list(pm)
)

# ---- non-canonical links: binomial probit, negative binomial (glmer.nb) -------
pr <- glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp,
            family = binomial(link = "probit"))
out$cbpp_probit <- list(
  model = "cbind(incidence, size - incidence) ~ period + (1 | herd)",
  family = "binomial(link = 'probit')",
  logLik = as.numeric(logLik(pr)),
  theta = unname(getME(pr, "theta")),
  beta = unname(fixef(pr)),
  residuals = residual_list(pr)
)
ticks <- read.csv("tests/data/grouseticks.csv")
ticks$YEAR <- factor(ticks$YEAR)
ticks$BROOD <- factor(ticks$BROOD)
nb <- glmer.nb(TICKS ~ YEAR + cHEIGHT + (1 | BROOD), data = ticks)
out$ticks_nb <- list(
  model = "TICKS ~ YEAR + cHEIGHT + (1 | BROOD)",
  family = "negative_binomial",
  logLik = as.numeric(logLik(nb)),
  theta = unname(getME(nb, "theta")),
  beta = unname(fixef(nb)),
  size = unname(getME(nb, "glmer.nb.theta")),
  residuals = residual_list(nb)
)

# ---- a smooth: gamm4 (ML), population predictions with se.fit ---------------
suppressPackageStartupMessages(library(gamm4))
smooth_data <- read.csv("tests/data/galamm_t_gamm4_s.csv")
sm <- gamm4(y ~ s(x), data = smooth_data, REML = FALSE)
smooth_new <- data.frame(x = c(0.05, 0.3, 0.5, 0.77, 0.95))
smooth_pred <- predict(sm$gam, newdata = smooth_new, se.fit = TRUE)
out$gamm4_smooth <- list(
  model = "y ~ s(x)",
  data = "galamm_t_gamm4_s.csv",
  logLik = as.numeric(logLik(sm$mer)),
  newdata = smooth_new,
  predict_new = unname(as.numeric(smooth_pred$fit)),
  se_new = unname(as.numeric(smooth_pred$se.fit))
)

out$versions <- list(R = R.version.string, lme4 = as.character(packageVersion("lme4")),
                     gamm4 = as.character(packageVersion("gamm4")),
                     mgcv = as.character(packageVersion("mgcv")))
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE),
           "tests/fixtures/inference.json")
