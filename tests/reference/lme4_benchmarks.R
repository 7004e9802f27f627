# Timing and accuracy references for the crossed random-intercept benchmarks.
#
# How to run (from the repository root; needs R with lme4 and jsonlite, and
# the project's Python environment for the simulated data):
#
#     .venv/bin/python benchmarks/simulate.py /tmp/semgalamm_bench
#     Rscript tests/reference/lme4_benchmarks.R /tmp/semgalamm_bench
#
# The CSVs (50,000 rows each) are generated into /tmp and are NOT committed;
# benchmarks/simulate.py rebuilds them exactly (data_check below lets a test
# confirm that).  Writes tests/fixtures/lme4_benchmarks.json with, per model:
# logLik, deviance (-2 logLik), fixef (+ SE), theta, varcorr, sigma (lmer),
# time_s = median elapsed seconds of 3 fits (system.time) on this machine.
# Fits are by maximum likelihood (REML = FALSE), default optimizers, nAGQ = 1.

suppressPackageStartupMessages({
  library(lme4)
  library(jsonlite)
})

stopifnot(file.exists("tests/reference/lme4_benchmarks.R"))  # run from repo root
args <- commandArgs(trailingOnly = TRUE)
data_dir <- if (length(args) >= 1) args[[1]] else "/tmp/semgalamm_bench"
n_timing <- 3L

read_bench <- function(name) {
  d <- read.csv(file.path(data_dir, paste0(name, ".csv")))
  for (f in c("f1", "f2", "f3")) d[[f]] <- factor(d[[f]])
  d
}

num_list <- function(x) {
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

data_check <- function(d, file) {
  list(
    file = file,
    nrow = nrow(d),
    sum_y = sum(d$y),
    sum_x = sum(d$x),
    sum_xy = sum(d$x * d$y),
    first_row = list(y = d$y[1], x = d$x[1], f1 = as.character(d$f1[1]),
                     f2 = as.character(d$f2[1]), f3 = as.character(d$f3[1])),
    nlevels = list(f1 = nlevels(d$f1), f2 = nlevels(d$f2), f3 = nlevels(d$f3))
  )
}

bench <- function(id, call_text, file, d, fit_fun) {
  times <- numeric(n_timing)
  fit <- NULL
  for (i in seq_len(n_timing)) {
    times[i] <- unname(system.time(fit <- fit_fun(d))["elapsed"])
  }
  is_lmm <- isLMM(fit)
  ll <- logLik(fit)
  th <- getME(fit, "theta")
  out <- list(
    id = id,
    call = call_text,
    data = data_check(d, file),
    family = if (is_lmm) "gaussian" else family(fit)$family,
    link = if (is_lmm) "identity" else family(fit)$link,
    optimizer = fit@optinfo$optimizer,
    feval = fit@optinfo$feval,
    nobs = nobs(fit),
    logLik = as.numeric(ll),
    deviance = -2 * as.numeric(ll),
    df = attr(ll, "df"),
    AIC = AIC(fit),
    BIC = BIC(fit),
    fixef = num_list(fixef(fit)),
    fixef_se = num_list(sqrt(diag(as.matrix(vcov(fit))))),
    varcorr = varcorr_rows(fit),
    sigma = if (is_lmm) sigma(fit) else NULL,
    theta = I(unname(th)),
    theta_names = I(names(th)),
    convergence_messages = I(as.character(fit@optinfo$conv$lme4$messages)),
    warnings = I(as.character(unlist(fit@optinfo$warnings))),
    time_s = median(times),
    time_s_all = I(times)
  )
  cat(sprintf("%-20s logLik = %.6f  time_s = %.2f\n", id, out$logLik, out$time_s))
  out[!vapply(out, is.null, logical(1))]
}

gauss <- read_bench("crossed_gaussian")
binom <- read_bench("crossed_binomial")

models <- list()
models$crossed_gaussian <- bench(
  "crossed_gaussian",
  "lmer(y ~ x + (1 | f1) + (1 | f2) + (1 | f3), crossed_gaussian, REML = FALSE)",
  "crossed_gaussian.csv (benchmarks/simulate.py: crossed_gaussian(50_000, seed=2026))",
  gauss,
  function(d) lmer(y ~ x + (1 | f1) + (1 | f2) + (1 | f3), d, REML = FALSE))
models$crossed_binomial <- bench(
  "crossed_binomial",
  "glmer(y ~ x + (1 | f1) + (1 | f2) + (1 | f3), crossed_binomial, family = binomial)",
  "crossed_binomial.csv (benchmarks/simulate.py: crossed_binomial(50_000, seed=2027))",
  binom,
  function(d) glmer(y ~ x + (1 | f1) + (1 | f2) + (1 | f3), d, family = binomial))

out <- c(
  list(
    versions = list(
      R = R.version.string,
      lme4 = as.character(packageVersion("lme4")),
      Matrix = as.character(packageVersion("Matrix")),
      jsonlite = as.character(packageVersion("jsonlite")),
      platform = R.version$platform,
      cores = parallel::detectCores(),
      date = format(Sys.Date())
    ),
    notes = list(
      truth = paste("simulated with f1/f2/f3 SDs 1.0/0.5/0.3, slope 0.5;",
                    "gaussian: intercept 1, residual SD 1; binomial: intercept -0.5, logit link"),
      time_s = "median elapsed seconds of 3 fits on this machine (lme4 defaults)",
      data = "data_check: sums and first row of the CSV fitted, to check a rebuilt frame"
    )
  ),
  models
)
write_json(out, "tests/fixtures/lme4_benchmarks.json", auto_unbox = TRUE,
           digits = NA, pretty = TRUE)
cat("wrote tests/fixtures/lme4_benchmarks.json\n")
