# gamm4 0.2-6 fits for smooth features galamm's reference fits do not cover: a factor `by`
# (one smooth per level), REML, and a Poisson smooth with crossed random effects. Run from the repository root:
#   Rscript tests/reference/gamm4_smooths.R
suppressMessages(library(gamm4))
library(jsonlite)

cog <- read.csv("tests/data/cognition_domains13.csv")
cog$domain <- factor(cog$domain, levels = c(1, 3))
items <- subset(cog, item %in% c(11, 31))
semi <- read.csv("tests/data/galamm_v_semi_gamm_gaussian.csv")

summarize <- function(fit, data, formula, reml, smooth_vars, random = ~ (1 | id),
                      family = gaussian()) {
  t <- system.time(fit <- gamm4(formula, random = random, data = data, REML = reml,
                                family = family))
  pd <- plot(fit$gam, n = 20, select = 0, se = 1)  # fit and 1 x standard error
  pm <- plot(fit$gam, n = 20, select = 0, se = 1, seWithMean = TRUE)
  smooths <- lapply(seq_along(pd), function(i) {
    p <- pd[[i]]
    list(label = p$label, x = p$x, fit = as.numeric(p$fit), se = p$se,
         se_with_mean = pm[[i]]$se)
  })
  list(reml = reml, logLik = as.numeric(logLik(fit$mer)),
       fixef_names = names(lme4::fixef(fit$mer)), fixef = unname(lme4::fixef(fit$mer)),
       edf = unname(summary(fit$gam)$edf), smooths = smooths,
       sigma = sigma(fit$mer), seconds = unname(t["elapsed"]))
}

pdf(NULL)
out <- list(
  factor_by = summarize(NULL, items, y ~ domain + s(x, by = domain), FALSE),
  reml = summarize(NULL, semi, y ~ s(x), TRUE)
)
ticks <- read.csv("tests/data/grouseticks.csv")
ticks$YEAR <- factor(ticks$YEAR)
out$poisson_crossed <- summarize(NULL, ticks, TICKS ~ YEAR + s(cHEIGHT), FALSE,
                                 random = ~ (1 | BROOD) + (1 | LOCATION), family = poisson())
out$poisson_crossed$data <- "grouseticks.csv"
out$factor_by$data <- "cognition_domains13.csv (items 11 and 31)"
out$reml$data <- "galamm_v_semi_gamm_gaussian.csv"
writeLines(toJSON(out, digits = 15, auto_unbox = TRUE, pretty = TRUE),
           "tests/fixtures/gamm4_smooths.json")
