# Reference fits of lme4 models for the semgalamm test suite.
#
# How to run (from the repository root; needs R with lme4 and jsonlite, e.g.
# Debian's r-base-core r-cran-lme4 r-cran-jsonlite):
#
#     Rscript tests/reference/lme4_models.R
#
# It writes
#   tests/data/{sleepstudy,Penicillin,Pastes,cbpp,grouseticks,VerbAgg}.csv
#       (the datasets as exported from R; epilep.csv is read, not written: it
#       is galamm 0.3.0's data, copied from the shared reference data)
#   tests/fixtures/lme4_models.json  (one object per model id)
#
# The Python tests read only the CSV and JSON files; R is not needed to test.
# Everything is fitted by maximum likelihood (REML = FALSE for lmer) except
# `sleepstudy_slopes_reml`.  Default optimizers and nAGQ = 1 (Laplace).
#
# Field notes (see also the "notes" entry written into the JSON):
#   deviance       -2 * logLik (for the REML fit: the REML criterion)
#   deviance_lme4  what deviance(fit) returns (GLMM: sum of squared deviance
#                  residuals, not -2 logLik; ML lmer: -2 logLik; absent for REML)
#   fixef_se       sqrt(diag(vcov(fit))) (GLMMs: lme4's default, from the
#                  finite-difference Hessian of the deviance in (theta, beta))
#   fixef_se_rx    GLMMs only: sqrt(diag(vcov(fit, use.hessian = FALSE)))
#                  (from the RX factor at the Laplace optimum)
#   fitted_first10 fitted(fit)[1:10], on the response scale (mean) for GLMMs
#   ranef          first 5 levels of each grouping factor: conditional modes
#   time_s         median elapsed seconds of 5 fits (system.time)
#   devfun_at      lme4's objective at fixed parameters: lmer's profiled ML
#                  deviance as a function of theta; glmer's (nAGQ = 1) Laplace
#                  deviance (-2 logLik) as a function of c(theta, beta)

suppressPackageStartupMessages({
  library(lme4)
  library(jsonlite)
})

stopifnot(file.exists("tests/reference/lme4_models.R"))  # run from repo root
dir.create("tests/data", showWarnings = FALSE, recursive = TRUE)
dir.create("tests/fixtures", showWarnings = FALSE, recursive = TRUE)

n_timing <- 5L

# ---------------------------------------------------------------- data ------

data("sleepstudy", "Penicillin", "Pastes", "cbpp", "grouseticks", "VerbAgg",
     package = "lme4")

grouseticks$cHEIGHT <- grouseticks$HEIGHT - mean(grouseticks$HEIGHT)

# r2 written as 0/1 (1 = "Y"); fitting uses the same 0/1 column.
verbagg <- VerbAgg
verbagg$r2 <- as.integer(verbagg$r2 == "Y")

epilep <- read.csv("tests/data/epilep.csv")

datasets <- list(
  sleepstudy = sleepstudy,
  Penicillin = Penicillin,
  Pastes = Pastes,
  cbpp = cbpp,
  grouseticks = grouseticks,
  VerbAgg = verbagg
)
for (nm in names(datasets)) {
  write.csv(datasets[[nm]], file.path("tests/data", paste0(nm, ".csv")),
            row.names = FALSE)
}

# tests/data/README.md: columns, types and factor level orders (level order
# decides treatment contrasts and the order of random-effect levels).
describe_levels <- function(lv) {
  n <- length(lv)
  num <- suppressWarnings(as.numeric(lv))
  if (!anyNA(num) && !is.unsorted(num, strictly = TRUE)) {
    if (n > 30) {
      return(sprintf("%d levels, in increasing numeric order: %s, ..., %s",
                     n, paste(lv[1:5], collapse = ", "),
                     paste(lv[(n - 2):n], collapse = ", ")))
    }
    return(sprintf("%d levels, numeric order: %s", n, paste(lv, collapse = ", ")))
  }
  if (n > 30) {
    return(sprintf("%d levels: %s, ..., %s", n, paste(lv[1:10], collapse = ", "),
                   paste(lv[(n - 2):n], collapse = ", ")))
  }
  sprintf("%d levels, in this order: %s", n, paste(lv, collapse = ", "))
}
col_type <- function(x) {
  if (is.ordered(x)) "ordered factor (labels)"
  else if (is.factor(x)) "factor (labels)"
  else if (is.integer(x)) "integer"
  else if (is.numeric(x) && all(x == round(x))) "numeric (whole numbers)"
  else if (is.numeric(x)) "numeric"
  else class(x)[1]
}
data_notes <- list(
  sleepstudy = "lme4::sleepstudy: reaction times by days of sleep deprivation.",
  Penicillin = "lme4::Penicillin: penicillin assay, plate and sample crossed.",
  Pastes = "lme4::Pastes: paste strength, cask nested in batch (`sample` = batch:cask).",
  cbpp = "lme4::cbpp: contagious bovine pleuropneumonia; incidence out of size per herd and period.",
  grouseticks = paste("lme4::grouseticks: ticks on red grouse chicks.",
                      "`cHEIGHT` = HEIGHT - mean(HEIGHT), recomputed in R."),
  VerbAgg = paste("lme4::VerbAgg: verbal aggression item responses.",
                  "`r2` is written as 0/1 (1 = \"Y\", 0 = \"N\"; in R a factor N/Y)."),
  epilep = paste("galamm 0.3.0's epilep (copied from the shared reference data, not",
                 "written by the script): progabide trial seizure counts, 59 subjects",
                 "x 4 visits. `subj` is the grouping variable (integer id).")
)
readme <- c(
  "# Test datasets",
  "",
  "Written by `Rscript tests/reference/lme4_models.R` (run from the repo root)",
  "with `write.csv(row.names = FALSE)`: factors are written as their labels, so",
  "when reading a CSV set each factor's levels in the order given here (it decides",
  "treatment contrasts: the first level is the baseline). Fits of these data are",
  "in `tests/fixtures/lme4_models.json`.",
  ""
)
for (nm in c(names(datasets), "epilep")) {
  d <- if (nm == "epilep") epilep else datasets[[nm]]
  readme <- c(readme, sprintf("## %s.csv", nm), "", data_notes[[nm]], "",
              sprintf("%d rows, %d columns.", nrow(d), ncol(d)), "",
              "| column | type | levels |", "|---|---|---|")
  for (cn in names(d)) {
    x <- d[[cn]]
    lv <- if (is.factor(x)) describe_levels(levels(x)) else ""
    readme <- c(readme, sprintf("| %s | %s | %s |", cn, col_type(x), lv))
  }
  readme <- c(readme, "")
}
writeLines(readme, "tests/data/README.md")

# ------------------------------------------------------------- helpers ------

num_list <- function(x) {
  # named numeric vector -> named list (a JSON object)
  out <- as.list(unname(x))
  names(out) <- names(x)
  out
}

varcorr_rows <- function(fit) {
  vc <- as.data.frame(VarCorr(fit))
  lapply(seq_len(nrow(vc)), function(i) {
    row <- list(grp = vc$grp[i], var1 = vc$var1[i], var2 = vc$var2[i],
                vcov = vc$vcov[i], sdcor = vc$sdcor[i])
    row[!vapply(row, function(v) length(v) == 0 || is.na(v), logical(1))]
  })
}

ranef_first5 <- function(fit) {
  re <- ranef(fit)
  out <- list()
  for (g in names(re)) {
    d <- re[[g]]
    k <- min(5L, nrow(d))
    entry <- list(levels = I(rownames(d)[seq_len(k)]))
    for (cn in colnames(d)) entry[[cn]] <- I(d[[cn]][seq_len(k)])
    out[[g]] <- entry
  }
  out
}

median_time <- function(expr_fun, n = n_timing) {
  t <- vapply(seq_len(n), function(i) {
    unname(system.time(suppressWarnings(suppressMessages(expr_fun())))["elapsed"])
  }, numeric(1))
  list(median = median(t), all = t)
}

summarise_fit <- function(id, call_text, data_file, fit, fit_fun) {
  is_lmm <- isLMM(fit)
  reml <- is_lmm && isREML(fit)
  ll <- logLik(fit)
  ic <- c(AIC = AIC(fit), BIC = BIC(fit))
  th <- getME(fit, "theta")
  timing <- median_time(fit_fun)
  out <- list(
    id = id,
    call = call_text,
    data = data_file,
    family = if (is_lmm) "gaussian" else family(fit)$family,
    link = if (is_lmm) "identity" else family(fit)$link,
    REML = reml,
    nAGQ = if (is_lmm) NULL else fit@devcomp$dims[["nAGQ"]],
    optimizer = fit@optinfo$optimizer,
    nobs = nobs(fit),
    ngrps = num_list(ngrps(fit)),
    logLik = as.numeric(ll),
    deviance = -2 * as.numeric(ll),
    deviance_lme4 = if (reml) NULL else deviance(fit),
    df = attr(ll, "df"),
    AIC = ic[["AIC"]],
    BIC = ic[["BIC"]],
    fixef = num_list(fixef(fit)),
    fixef_se = num_list(sqrt(diag(as.matrix(vcov(fit))))),
    fixef_se_rx = if (is_lmm) NULL else
      num_list(sqrt(diag(as.matrix(suppressWarnings(
        vcov(fit, use.hessian = FALSE)))))),
    varcorr = varcorr_rows(fit),
    sigma = if (is_lmm) sigma(fit) else NULL,
    theta = I(unname(th)),
    theta_names = I(names(th)),
    fitted_first10 = I(unname(fitted(fit)[1:10])),
    ranef = ranef_first5(fit),
    convergence_messages = I(as.character(fit@optinfo$conv$lme4$messages)),
    warnings = I(as.character(unlist(fit@optinfo$warnings))),
    time_s = timing$median,
    time_s_all = I(timing$all)
  )
  out[!vapply(out, is.null, logical(1))]
}

models <- list()

add_model <- function(id, call_text, data_file, fit_fun) {
  fit <- fit_fun()
  models[[id]] <<- summarise_fit(id, call_text, data_file, fit, fit_fun)
  cat(sprintf("%-26s logLik = %.6f  time_s = %.3f\n", id,
              models[[id]]$logLik, models[[id]]$time_s))
  invisible(fit)
}

# -------------------------------------------------------------- models ------

fit_sleep <- add_model(
  "sleepstudy_slopes",
  "lmer(Reaction ~ Days + (Days | Subject), sleepstudy, REML = FALSE)",
  "sleepstudy.csv",
  function() lmer(Reaction ~ Days + (Days | Subject), sleepstudy, REML = FALSE))

add_model(
  "sleepstudy_slopes_reml",
  "lmer(Reaction ~ Days + (Days | Subject), sleepstudy, REML = TRUE)",
  "sleepstudy.csv",
  function() lmer(Reaction ~ Days + (Days | Subject), sleepstudy, REML = TRUE))

add_model(
  "sleepstudy_uncorrelated",
  "lmer(Reaction ~ Days + (Days || Subject), sleepstudy, REML = FALSE)",
  "sleepstudy.csv",
  function() lmer(Reaction ~ Days + (Days || Subject), sleepstudy, REML = FALSE))

add_model(
  "penicillin_crossed",
  "lmer(diameter ~ 1 + (1 | plate) + (1 | sample), Penicillin, REML = FALSE)",
  "Penicillin.csv",
  function() lmer(diameter ~ 1 + (1 | plate) + (1 | sample), Penicillin,
                  REML = FALSE))

add_model(
  "pastes_nested",
  "lmer(strength ~ 1 + (1 | batch/cask), Pastes, REML = FALSE)",
  "Pastes.csv",
  function() lmer(strength ~ 1 + (1 | batch/cask), Pastes, REML = FALSE))

fit_cbpp <- add_model(
  "cbpp_trials",
  "glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp, family = binomial)",
  "cbpp.csv",
  function() glmer(cbind(incidence, size - incidence) ~ period + (1 | herd),
                   cbpp, family = binomial))

add_model(
  "grouseticks_poisson",
  "glmer(TICKS ~ YEAR + cHEIGHT + (1 | BROOD) + (1 | LOCATION), grouseticks, family = poisson)  # cHEIGHT = HEIGHT - mean(HEIGHT)",
  "grouseticks.csv",
  function() glmer(TICKS ~ YEAR + cHEIGHT + (1 | BROOD) + (1 | LOCATION),
                   grouseticks, family = poisson))

add_model(
  "verbagg_crossed",
  "glmer(r2 ~ Anger + Gender + btype + situ + (1 | id) + (1 | item), VerbAgg, family = binomial)  # r2 = 1 if 'Y'",
  "VerbAgg.csv",
  function() glmer(r2 ~ Anger + Gender + btype + situ + (1 | id) + (1 | item),
                   verbagg, family = binomial))

add_model(
  "epilep_poisson",
  "glmer(y ~ lbas * treat + lage + v4 + (1 | subj), epilep, family = poisson)",
  "epilep.csv",
  function() glmer(y ~ lbas * treat + lage + v4 + (1 | subj), epilep,
                   family = poisson))

# ------------------------------------------- objective at fixed params ------

devfun_sleep <- lmer(Reaction ~ Days + (Days | Subject), sleepstudy,
                     REML = FALSE, devFunOnly = TRUE)
sleep_thetas <- list(c(1, 0, 1), c(0.5, 0.1, 0.2), c(0.9667, 0.0152, 0.2309),
                     unname(getME(fit_sleep, "theta")))
models$sleepstudy_slopes$devfun_at <- lapply(sleep_thetas, function(th) {
  list(theta = I(th), deviance = devfun_sleep(th))
})
models$sleepstudy_slopes$devfun_note <- paste(
  "lmer(..., REML = FALSE, devFunOnly = TRUE)(theta): profiled ML deviance",
  "(-2 logLik with beta and sigma profiled out); theta = lower Cholesky",
  "factor of the Subject covariance / sigma, column-wise (theta_names).",
  "The last point is the optimum.")

devfun_cbpp <- glmer(cbind(incidence, size - incidence) ~ period + (1 | herd),
                     cbpp, family = binomial, devFunOnly = TRUE)
cbpp_opt <- unname(c(getME(fit_cbpp, "theta"), fixef(fit_cbpp)))
cbpp_points <- list(
  cbpp_opt,
  c(1, -1.4, -1, -1.1, -1.6),
  c(0.5, -1, -0.5, -0.5, -1),
  c(0, -1.4, -1, -1.1, -1.6)
)
models$cbpp_trials$devfun_at <- lapply(cbpp_points, function(p) {
  list(theta = I(p[1]), beta = I(p[-1]), deviance = devfun_cbpp(p))
})
models$cbpp_trials$devfun_note <- paste(
  "glmer(..., devFunOnly = TRUE) with nAGQ = 1 is a function of c(theta, beta);",
  "its value is the Laplace approximation of -2 logLik (binomial constants",
  "included), u found by PIRLS at fixed (theta, beta). The first point is the",
  "optimum; theta = 0 means no random effect (plain GLM deviance).")
stopifnot(abs(models$cbpp_trials$devfun_at[[1]]$deviance -
                models$cbpp_trials$deviance) < 1e-6)

# ---------------------------------------------------------------- write -----

out <- c(
  list(
    versions = list(
      R = R.version.string,
      lme4 = as.character(packageVersion("lme4")),
      Matrix = as.character(packageVersion("Matrix")),
      jsonlite = as.character(packageVersion("jsonlite")),
      platform = R.version$platform,
      date = format(Sys.Date())
    ),
    notes = list(
      deviance = "-2 * logLik (REML fit: the REML criterion)",
      deviance_lme4 = "deviance(fit); for GLMMs the sum of squared deviance residuals",
      fixef_se = "sqrt(diag(vcov(fit))); GLMMs: lme4 default (finite-difference Hessian in (theta, beta))",
      fixef_se_rx = "GLMMs: sqrt(diag(vcov(fit, use.hessian = FALSE)))",
      fitted_first10 = "fitted(fit)[1:10]; response scale for GLMMs",
      ranef = "conditional modes, first 5 levels of each grouping factor, in the factor's level order",
      time_s = "median elapsed seconds of 5 fits on this machine"
    )
  ),
  models
)
write_json(out, "tests/fixtures/lme4_models.json", auto_unbox = TRUE,
           digits = NA, pretty = TRUE)
cat("wrote tests/fixtures/lme4_models.json\n")
