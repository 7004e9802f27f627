# References for the response families of issue 13 (tests/test_families_*.py).
#
# How to run (from the repository root; needs R with lme4, glmmTMB, ordinal and jsonlite, e.g.
# Debian's r-cran-lme4 r-cran-glmmtmb r-cran-ordinal r-cran-jsonlite; about 1 min):
#
#     Rscript tests/reference/families_fits.R
#
# It writes the data it simulates or takes from R packages to tests/data/ (wine.csv,
# soup.csv, gamma_sim.csv, grm_items.csv, poisson_identity.csv) and fits the models from
# those files read back, so that the Python tests see exactly the same rows.
# tests/fixtures/families.json holds one object per case: the R call, logLik, the fixed
# effects (and thresholds) with names and standard errors,
# random-effect SDs, the dispersion parameter, and the package versions.
#
# Laplace log-determinants: glmer uses the Fisher (expected) weight of each row in
# log|A'WA + I|, also for non-canonical links (probit, cloglog, glmer.nb's log link);
# glmmTMB (TMB) and clmm use the exact Hessian of the conditional log-likelihood (the observed
# weight). Each case records which (`logdet_weight`).
suppressMessages({
  library(lme4); library(glmmTMB); library(ordinal); library(jsonlite)
})
versions <- list(R = R.version.string, lme4 = as.character(packageVersion("lme4")),
                 glmmTMB = as.character(packageVersion("glmmTMB")),
                 ordinal = as.character(packageVersion("ordinal")))

# ---- data ----------------------------------------------------------------------------------
write.csv(ordinal::wine, "tests/data/wine.csv", row.names = FALSE)
wine <- read.csv("tests/data/wine.csv")
wine$rating <- factor(wine$rating, ordered = TRUE)
wine$temp <- factor(wine$temp, levels = c("cold", "warm"))
wine$contact <- factor(wine$contact, levels = c("no", "yes"))
wine$judge <- factor(wine$judge)
wine$bottle <- factor(wine$bottle)
# A second random term: ordinal's soup data (wine's bottle variance is estimated as 0).
write.csv(ordinal::soup[, c("RESP", "PROD", "SURENESS")], "tests/data/soup.csv",
          row.names = FALSE)
soup <- read.csv("tests/data/soup.csv")
soup$SURENESS <- factor(soup$SURENESS, ordered = TRUE)
soup$RESP <- factor(soup$RESP); soup$PROD <- factor(soup$PROD, levels = c("Ref", "Test"))

# Gamma responses: 40 clusters of 8, log mean 0.5 + 0.4 x + b (SD 0.6), shape 3.
set.seed(20261213)
n_group <- 40; per <- 8
g <- rep(seq_len(n_group), each = per)
x <- round(rnorm(n_group * per), 4)
b <- rnorm(n_group, sd = 0.6)
mu <- exp(0.5 + 0.4 * x + b[g])
y <- round(rgamma(n_group * per, shape = 3, rate = 3 / mu), 5)
write.csv(data.frame(y = y, x = x, g = g), "tests/data/gamma_sim.csv", row.names = FALSE)
gam <- read.csv("tests/data/gamma_sim.csv"); gam$g <- factor(gam$g)

# Graded response items with equal loadings: 250 persons, 4 items with 4 categories each,
# logit P(y <= j) = tau_{item, j} - eta, eta ~ N(0, 1.2^2).
set.seed(20261214)
n_person <- 250
tau <- rbind(c(-1.5, 0, 1.2), c(-1, 0.5, 1.8), c(-2, -0.5, 0.6), c(-0.8, 0.2, 1.0))
eta <- rnorm(n_person, sd = 1.2)
grm <- expand.grid(item = seq_len(4), person = seq_len(n_person))
grm <- grm[, c("person", "item")]
grm$y <- vapply(seq_len(nrow(grm)), function(i) {
  cum <- plogis(tau[grm$item[i], ] - eta[grm$person[i]])
  sum(runif(1) > cum) + 1L
}, integer(1))
write.csv(grm, "tests/data/grm_items.csv", row.names = FALSE)
grm <- read.csv("tests/data/grm_items.csv")
grm$yf <- factor(grm$y, ordered = TRUE)
grm$item <- factor(grm$item); grm$person <- factor(grm$person)

# Poisson counts with an identity link: mean 2 + 1.5 x + b, x in (0, 3), b ~ N(0, 0.3^2),
# 30 clusters of 10 (glmer's PIRLS fails on it, "PIRLS loop resulted in NaN value"; glmmTMB
# with a start fits it).
set.seed(20261215)
g <- rep(seq_len(30), each = 10)
x <- round(runif(300, 0, 3), 3)
b <- rnorm(30, sd = 0.3)
write.csv(data.frame(y = rpois(300, 2 + 1.5 * x + b[g]), x = x, g = g),
          "tests/data/poisson_identity.csv", row.names = FALSE)
pid <- read.csv("tests/data/poisson_identity.csv"); pid$g <- factor(pid$g)

cbpp <- read.csv("tests/data/cbpp.csv")
cbpp$herd <- factor(cbpp$herd); cbpp$period <- factor(cbpp$period)
ticks <- read.csv("tests/data/grouseticks.csv")
ticks$YEAR <- factor(ticks$YEAR); ticks$BROOD <- factor(ticks$BROOD)

# ---- helpers -------------------------------------------------------------------------------
named <- function(v) list(names = I(names(v)), values = I(unname(v)))

glmer_case <- function(fit, call, data, weight = "fisher", dispersion = NULL) {
  list(call = call, data = data, package = "lme4", logdet_weight = weight,
       logLik = as.numeric(logLik(fit)),
       fixef = named(fixef(fit)), fixef_se = unname(sqrt(diag(as.matrix(vcov(fit))))),
       theta = unname(getME(fit, "theta")),
       sd = I(unname(sapply(VarCorr(fit), function(v) attr(v, "stddev")))),
       dispersion = dispersion)
}

tmb_case <- function(fit, call, data, dispersion_name) {
  s <- summary(fit)$coefficients$cond
  list(call = call, data = data, package = "glmmTMB", logdet_weight = "observed",
       logLik = as.numeric(logLik(fit)),
       fixef = named(fixef(fit)$cond), fixef_se = unname(s[, "Std. Error"]),
       sd = unname(sapply(VarCorr(fit)$cond, function(v) attr(v, "stddev"))),
       dispersion = if (!is.null(dispersion_name)) list(name = dispersion_name, value = unname(sigma(fit)),
                         log_value = unname(fit$fit$par["betad"]),
                         log_se = unname(sqrt(diag(vcov(fit, full = TRUE)))[
                           grep("^d~", colnames(vcov(fit, full = TRUE)))])))
}

clmm_case <- function(fit, call, data) {
  s <- summary(fit)$coefficients
  alpha <- fit$alpha; beta <- fit$beta
  list(call = call, data = data, package = "ordinal", logdet_weight = "observed",
       link = fit$link, logLik = as.numeric(logLik(fit)),
       thresholds = named(alpha), thresholds_se = unname(s[names(alpha), "Std. Error"]),
       fixef = named(beta), fixef_se = I(unname(s[names(beta), "Std. Error"])),
       sd = I(unname(sapply(VarCorr(fit), function(v) attr(v, "stddev")))),
       gradient_max = max(abs(fit$gradient)))
}

out <- list(versions = versions)

# ---- binomial probit and cloglog (glmer) ---------------------------------------------------
for (link in c("probit", "cloglog")) {
  f <- glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), data = cbpp,
             family = binomial(link = link))
  out[[paste0("cbpp_", link)]] <- glmer_case(
    f, sprintf("glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp, binomial(link = '%s'))", link),
    "tests/data/cbpp.csv")
}

tpi <- glmmTMB(y ~ x + (1 | g), data = pid, family = poisson(link = "identity"),
               start = list(beta = c(2, 1.5)))  # beta = 0 is a mean of 0
out$poisson_identity_tmb <- tmb_case(
  tpi, "glmmTMB(y ~ x + (1 | g), poisson_identity, poisson(link = 'identity'))",
  "tests/data/poisson_identity.csv", NULL)

# ---- negative binomial ---------------------------------------------------------------------
nb <- glmer.nb(TICKS ~ YEAR + cHEIGHT + (1 | BROOD), data = ticks)
out$ticks_glmer_nb <- glmer_case(
  nb, "glmer.nb(TICKS ~ YEAR + cHEIGHT + (1 | BROOD), grouseticks)",
  "tests/data/grouseticks.csv",
  dispersion = list(name = "size", value = unname(getME(nb, "glmer.nb.theta"))))
tnb <- glmmTMB(TICKS ~ YEAR + cHEIGHT + (1 | BROOD), data = ticks, family = nbinom2)
out$ticks_tmb_nbinom2 <- tmb_case(
  tnb, "glmmTMB(TICKS ~ YEAR + cHEIGHT + (1 | BROOD), grouseticks, family = nbinom2)",
  "tests/data/grouseticks.csv", "size")

# ---- Gamma (log link) ----------------------------------------------------------------------
tg <- glmmTMB(y ~ x + (1 | g), data = gam, family = Gamma(link = "log"))
out$gamma_tmb_log <- tmb_case(
  tg, "glmmTMB(y ~ x + (1 | g), gamma_sim, family = Gamma(link = 'log'))",
  "tests/data/gamma_sim.csv", "dispersion (sigma^2 = 1/shape)")
tgi <- glmmTMB(y ~ x + (1 | g), data = gam, family = Gamma(link = "inverse"),
               start = list(beta = c(1 / mean(gam$y), 0)))  # beta = 0 is 1/0
out$gamma_tmb_inverse <- tmb_case(
  tgi, "glmmTMB(y ~ x + (1 | g), gamma_sim, family = Gamma(link = 'inverse'))",
  "tests/data/gamma_sim.csv", "dispersion (sigma^2 = 1/shape)")
out$gamma_tmb_log$dispersion$note <-
  "glmmTMB's sigma for Gamma is the coefficient of variation: shape = 1 / sigma^2"

# ---- ordinal (clmm) ------------------------------------------------------------------------
ctl <- clmm.control(gradTol = 1e-8, maxIter = 500, maxLineIter = 500)
# cloglog: clm's F(x) = 1 - exp(-exp(x)) (the one semgalamm uses). clmm and clmm2 with
# link = "cloglog" and a random effect compute the likelihood with exp(-exp(-x)) instead
# (their logLik on wine, -82.729, is the quadrature integral with that F at their estimates;
# with 1 - exp(-exp(x)) it is -88.862), and clmm's link = "loglog" is the cloglog of clm:
# the references are clm without random effects and clmm(link = "loglog").
fl <- clmm(rating ~ temp + contact + (1 | judge), data = wine, link = "loglog", Hess = TRUE,
           control = ctl)
out$wine_cloglog_clmm_loglog <- clmm_case(
  fl, "clmm(rating ~ temp + contact + (1 | judge), wine, link = 'loglog')",
  "tests/data/wine.csv")
fc <- clm(rating ~ temp + contact, data = wine, link = "cloglog")
sc <- summary(fc)$coefficients
out$wine_cloglog_clm <- list(
  call = "clm(rating ~ temp + contact, wine, link = 'cloglog')", data = "tests/data/wine.csv",
  package = "ordinal", link = "cloglog", logLik = as.numeric(logLik(fc)),
  thresholds = named(fc$alpha), thresholds_se = I(unname(sc[names(fc$alpha), "Std. Error"])),
  fixef = named(fc$beta), fixef_se = I(unname(sc[names(fc$beta), "Std. Error"])), sd = I(numeric(0)))
for (link in c("logit", "probit")) {
  f1 <- clmm(rating ~ temp + contact + (1 | judge), data = wine, link = link, Hess = TRUE,
             control = ctl)
  out[[paste0("wine_", link)]] <- clmm_case(
    f1, sprintf("clmm(rating ~ temp + contact + (1 | judge), wine, link = '%s')", link),
    "tests/data/wine.csv")
  f2 <- clmm(SURENESS ~ PROD + (1 | RESP) + (1 | RESP:PROD), data = soup, link = link,
             Hess = TRUE, control = ctl)
  out[[paste0("soup_", link)]] <- clmm_case(
    f2, sprintf("clmm(SURENESS ~ PROD + (1 | RESP) + (1 | RESP:PROD), soup, link = '%s')", link),
    "tests/data/soup.csv")
}

# Item-specific thresholds with a common person effect: clmm2's nominal = ~ item (with nlminb:
# its default ucminf stops 2e-3 below the maximum). Its
# threshold of item k, category j is alpha_j + nominal_{k, j} (item 1 the reference); the
# per-item thresholds and their SEs come from the linear map below.
f3 <- clmm2(yf ~ 1, nominal = ~ item, random = person, data = grm, Hess = TRUE,
            link = "logistic", control = clmm2.control(method = "nlminb", gradTol = 1e-8))
n_cut <- 3; n_item <- 4
est <- coef(f3)[seq_len(n_cut * n_item)]  # 1|2.(Intercept), 2|3.(Intercept), ..., 3|4.item4
V <- vcov(f3)[seq_along(est), seq_along(est)]
L <- matrix(0, n_item * n_cut, length(est))
for (k in seq_len(n_item)) for (j in seq_len(n_cut)) {
  L[(k - 1) * n_cut + j, j] <- 1
  if (k > 1) L[(k - 1) * n_cut + j, n_cut * (k - 1) + j] <- 1
}
theta_items <- as.vector(L %*% est)
out$grm_equal_loadings <- list(
  call = "clmm2(yf ~ 1, nominal = ~ item, random = person, grm_items, link = 'logistic')",
  data = "tests/data/grm_items.csv", package = "ordinal", logdet_weight = "observed",
  link = "logit", logLik = as.numeric(logLik(f3)),
  thresholds = list(names = as.vector(outer(paste0(seq_len(n_cut), "|", seq_len(n_cut) + 1),
                                            paste0("item", seq_len(n_item)),
                                            function(a, b) paste0(b, ":", a))),
                    values = theta_items),
  thresholds_se = sqrt(diag(L %*% V %*% t(L))),
  sd = unname(f3$stDev))

writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE, null = "null"),
           "tests/fixtures/families.json")
