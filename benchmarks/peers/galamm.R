# galamm side of `make bench`: Rscript benchmarks/peers/galamm.R <case> [repeats]
# (run from the repository root). The calls are those of the galamm reference fits
# (tests/fixtures/galamm_*.json name them); PLmixed's datasets are read from the CSVs the
# package ships, with the same factor() conversions.
suppressMessages(library(galamm))
here <- dirname(sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE)))
source(file.path(here, "timing.R"))
a <- peer_args()

data("cognition", "diet", "hsced", "latent_covariates", "mresp", "mresp_hsced",
     package = "galamm")
families <- gfam(list(gaussian, binomial))
case_data <- switch(
  a$case,
  kyps = transform(read.csv("semgalamm/datasets/data/KYPSsim.csv"), time = factor(time)),
  irt = transform(read.csv("semgalamm/datasets/data/IRTsim.csv"), item = factor(item)),
  judge = transform(read.csv("tests/data/JUDGEsim.csv"), item = factor(item)),
  semi_factor = transform(subset(cognition, domain == 1), y = y[, 1]),
  two_traits_4items = {
    d <- subset(cognition, domain %in% c(1, 3) & item %in% c("11", "12", "31", "32"))
    cbind(d, model.matrix(~ 0 + domain, data = d)[, c("domain1", "domain3")])
  },
  two_traits = {
    d <- subset(cognition, domain %in% c(1, 3))
    d <- cbind(d, model.matrix(~ 0 + domain, data = d)[, c("domain1", "domain3")])
    d$item <- droplevels(d$item)
    d
  },
  NULL
)

calls <- list(
  kyps = quote(galamm(
    esteem ~ time + (0 + ms | mid) + (0 + hs | hid) + (1 | sid), data = case_data,
    factor = c("ms", "hs"), load_var = "time",
    lambda = rbind(c(1, 0), c(NA, 0), c(NA, 1), c(NA, NA)))),
  irt = quote(galamm(
    y ~ item + (0 + ability | school / sid), data = case_data, family = binomial,
    load_var = "item", factor = "ability", lambda = matrix(c(1, NA, NA, NA, NA), ncol = 1))),
  judge = quote(galamm(
    response ~ 0 + item + (0 + teacher1 + teacher2 | tch) +
      (0 + trait1.t + trait2.t + trait1.s + trait2.s | stu) + (1 | class),
    data = case_data, load_var = "item",
    factor = c("teacher1", "teacher2", "trait1.t", "trait2.t", "trait1.s", "trait2.s"),
    lambda = rbind(c(1, 0, 1, 0, 0, 0), c(NA, 0, NA, 0, 0, 0), c(NA, 0, NA, 0, 0, 0),
                   c(0, 1, 0, 1, 0, 0), c(0, NA, 0, NA, 0, 0), c(0, NA, 0, NA, 0, 0),
                   c(0, 0, 0, 0, 1, 0), c(0, 0, 0, 0, NA, 0), c(0, 0, 0, 0, NA, 0),
                   c(0, 0, 0, 0, 0, 1), c(0, 0, 0, 0, 0, NA), c(0, 0, 0, 0, 0, NA)))),
  lc_int_x = quote(galamm(
    y ~ type + x:response + (0 + loading | id), data = latent_covariates,
    load_var = "type", lambda = matrix(c(1, NA, NA), ncol = 1), factor = "loading",
    factor_interactions = list(~ 1, ~ 1, ~ x))),
  hsced = quote(galamm(y ~ x + (1 | id), dispformula = ~ (1 | item), data = hsced)),
  mresp = quote(galamm(
    y ~ x + (0 + level | id), data = mresp, family = families, load_var = "itemgroup",
    lambda = matrix(c(1, NA), ncol = 1), factor = "level")),
  mresp_hsced = quote(galamm(
    y ~ x + (1 | id), dispformula = ~ (0 + isgauss | grp), family = families,
    data = mresp_hsced)),
  diet = quote(galamm(
    y ~ 0 + chd + (age * bus):chd + fiber + (age * bus):fiber + fiber2 + (0 + loading | id),
    data = diet, family = families, factor = "loading", load_var = "item",
    lambda = matrix(c(1, 1, NA), ncol = 1))),
  semi_factor = quote(galamm(
    y ~ 0 + item + sl(x, factor = "loading") + (0 + loading | id / timepoint),
    data = case_data, load_var = "item", lambda = matrix(c(1, NA, NA), ncol = 1),
    factor = "loading")),
  two_traits_4items = quote(galamm(
    y ~ domain + sl(x, k = 4, by = domain, factor = c("ability1", "ability3")) +
      (0 + domain1:ability1 + domain3:ability3 | id),
    data = case_data, load_var = "item", factor = c("ability1", "ability3"),
    lambda = matrix(c(1, NA, 0, 0, 0, 0, 1, NA), ncol = 2))),
  two_traits = quote(galamm(
    y ~ domain + sl(x, k = 4, by = domain, factor = c("ability1", "ability3")) +
      (0 + domain1:ability1 + domain3:ability3 | id),
    data = case_data, load_var = "item", factor = c("ability1", "ability3"),
    lambda = matrix(c(1, NA, NA, 0, 0, 0, 0, 0, 0, 0, 1, NA, NA, NA), ncol = 2)))
)
if (!a$case %in% names(calls)) stop("unknown case ", a$case, "; known: ",
                                    paste(names(calls), collapse = ", "))
timed <- time_fit(calls[[a$case]], a$repeats)
report(a$case, "galamm", timed, logLik(timed$fit))
