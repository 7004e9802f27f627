# Reference fits of structural equation models with R's lavaan, for semgalamm's SEM tests.
#
# How to run (from the repository root; needs R with lavaan and jsonlite, e.g. Debian's
# r-base-core r-cran-lavaan r-cran-jsonlite):
#
#     Rscript tests/reference/lavaan_fits.R
#
# It writes
#   semgalamm/datasets/data/{HolzingerSwineford1939,PoliticalDemocracy,Demo.growth,
#       Demo.twolevel}.csv                      lavaan's data(), write.csv(row.names = FALSE)
#   tests/data/HolzingerSwineford1939_missing.csv  HolzingerSwineford1939 with ~10% of the
#       x1..x9 cells set to NA (set.seed(20261202); no row loses all of x1..x9)
#   tests/fixtures/lavaan/<case>.json          one file per case (see CASES below)
#
# The Python tests read only the CSV and JSON files; R is not needed to test.
# See tests/reference/README.md for the fields of each JSON file.

suppressPackageStartupMessages({
  library(lavaan)
  library(jsonlite)
})

out_dir <- file.path("tests", "fixtures", "lavaan")
data_dir <- file.path("semgalamm", "datasets", "data")
dir.create(out_dir, recursive = TRUE, showWarnings = FALSE)
dir.create(data_dir, recursive = TRUE, showWarnings = FALSE)

# ---------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------

for (name in c("HolzingerSwineford1939", "PoliticalDemocracy", "Demo.growth",
               "Demo.twolevel")) {
  write.csv(get(name), file.path(data_dir, paste0(name, ".csv")), row.names = FALSE)
}

# HolzingerSwineford1939 with deterministic missing values in x1..x9.
RNGkind("Mersenne-Twister", "Inversion", "Rejection")
set.seed(20261202)
hs_missing <- HolzingerSwineford1939
xs <- paste0("x", 1:9)
n_cells <- nrow(hs_missing) * length(xs)
drop <- sample.int(n_cells, round(0.10 * n_cells))
mask <- matrix(FALSE, nrow(hs_missing), length(xs))
mask[drop] <- TRUE
# No row may lose all nine indicators: give such a row back its first indicator.
mask[rowSums(mask) == length(xs), 1] <- FALSE
for (j in seq_along(xs)) hs_missing[mask[, j], xs[j]] <- NA
missing_csv <- file.path("tests", "data", "HolzingerSwineford1939_missing.csv")
write.csv(hs_missing, missing_csv, row.names = FALSE)
hs_missing <- read.csv(missing_csv)   # fit from the file, as the Python side will
hs_missing$school <- factor(hs_missing$school, levels = levels(HolzingerSwineford1939$school))

# Fit from the shipped CSV files (write.csv keeps 15 significant digits), so that the
# reference is exactly reproducible from what the Python side reads.
datasets <- list()
for (name in c("HolzingerSwineford1939", "PoliticalDemocracy", "Demo.growth",
               "Demo.twolevel")) {
  datasets[[name]] <- read.csv(file.path(data_dir, paste0(name, ".csv")))
}
datasets$HolzingerSwineford1939$school <- factor(
  datasets$HolzingerSwineford1939$school, levels = levels(HolzingerSwineford1939$school))
datasets[[missing_csv]] <- hs_missing

# ---------------------------------------------------------------------------------------
# Cases
# ---------------------------------------------------------------------------------------

HS3 <- "visual =~ x1 + x2 + x3\n textual =~ x4 + x5 + x6\n speed =~ x7 + x8 + x9"
HS <- "HolzingerSwineford1939"
POLDEM <- paste(
  "ind60 =~ x1 + x2 + x3",
  "dem60 =~ y1 + y2 + y3 + y4",
  "dem65 =~ y5 + y6 + y7 + y8",
  "dem60 ~ ind60",
  "dem65 ~ ind60 + dem60",
  "y1 ~~ y5",
  "y2 ~~ y4 + y6",
  "y3 ~~ y7",
  "y4 ~~ y8",
  "y6 ~~ y8", sep = "\n ")
POLDEM_LABELS <- paste(
  "ind60 =~ x1 + x2 + x3",
  "dem60 =~ y1 + a*y2 + b*y3 + c*y4",
  "dem65 =~ y5 + a*y6 + b*y7 + c*y8",
  "dem60 ~ a1*ind60",
  "dem65 ~ c1*ind60 + b1*dem60",
  "y1 ~~ y5",
  "y2 ~~ y4 + y6",
  "y3 ~~ y7",
  "y4 ~~ y8",
  "y6 ~~ y8",
  "indirect := a1*b1",
  "total := c1 + a1*b1", sep = "\n ")
PATH <- "y1 ~ a*x1 + x2\n y5 ~ b*y1 + c*x1\n ind := a*b\n total := c + a*b"
GROWTH <- paste(
  "i =~ 1*t1 + 1*t2 + 1*t3 + 1*t4",
  "s =~ 0*t1 + 1*t2 + 2*t3 + 3*t4",
  "i ~ x1 + x2",
  "s ~ x1 + x2",
  "t1 ~ c1",
  "t2 ~ c2",
  "t3 ~ c3",
  "t4 ~ c4", sep = "\n ")
GROWTH_BASIC <- "i =~ 1*t1 + 1*t2 + 1*t3 + 1*t4\n s =~ 0*t1 + 1*t2 + 2*t3 + 3*t4"
TWOLEVEL <- paste(
  "level: 1",
  "fw =~ y1 + y2 + y3",
  "fw ~ x1 + x2 + x3",
  "level: 2",
  "fb =~ y1 + y2 + y3",
  "fb ~ w1 + w2", sep = "\n ")
TWOLEVEL_SIMPLE <- "level: 1\n fw =~ y1 + y2 + y3\n level: 2\n fb =~ y1 + y2 + y3"
CONSTRAINTS_FREE <- paste(
  "visual =~ x1 + l2*x2 + l3*x3",
  "textual =~ x4 + x5 + x6",
  "speed =~ x7 + x8 + x9",
  "x3 ~~ v3*x3", sep = "\n ")
CONSTRAINTS <- paste(CONSTRAINTS_FREE, "l2 == l3", "v3 > 0.9", sep = "\n ")

# case = list(fun, model, data, options (R argument names))
CASES <- list(
  hs_cfa = list("cfa", HS3, HS, list()),
  hs_meanstructure = list("cfa", HS3, HS, list(meanstructure = TRUE)),
  hs_observed_information = list("cfa", HS3, HS, list(information = "observed")),
  hs_orthogonal = list("cfa", HS3, HS, list(orthogonal = TRUE)),
  hs_std_lv = list("cfa", HS3, HS, list(std.lv = TRUE)),
  hs_equal_loadings = list("cfa", paste(
    "visual =~ x1 + a*x2 + a*x3", "textual =~ x4 + b*x5 + b*x6",
    "speed =~ x7 + x8 + x9", sep = "\n "), HS, list()),
  hs_cross_loading = list("cfa", paste(
    "visual =~ x1 + x2 + x3 + x9", "textual =~ x4 + x5 + x6",
    "speed =~ x7 + x8 + x9", sep = "\n "), HS, list()),
  hs_second_order = list("cfa", paste(HS3, "g =~ visual + textual + speed", sep = "\n "),
                         HS, list()),
  hs_residual_cov = list("cfa", paste(HS3, "x7 ~~ x8", sep = "\n "), HS, list()),
  hs_covariates = list("sem", paste(HS3, "visual ~ ageyr + sex", "textual ~ ageyr + sex",
                                    "speed ~ ageyr", sep = "\n "), HS, list()),
  hs_constraints = list("cfa", CONSTRAINTS, HS, list()),
  hs_group_configural = list("cfa", HS3, HS, list(group = "school")),
  hs_group_loadings = list("cfa", HS3, HS, list(group = "school",
                                                group.equal = "loadings")),
  hs_group_intercepts = list("cfa", HS3, HS, list(group = "school",
                                                  group.equal = c("loadings", "intercepts"))),
  hs_fiml = list("cfa", HS3, missing_csv, list(missing = "ml")),
  hs_listwise = list("cfa", HS3, missing_csv, list(missing = "listwise")),
  poldem = list("sem", POLDEM, "PoliticalDemocracy", list()),
  poldem_labels = list("sem", POLDEM_LABELS, "PoliticalDemocracy", list()),
  path_observed = list("sem", PATH, "PoliticalDemocracy", list()),
  path_observed_fixedx_false = list("sem", PATH, "PoliticalDemocracy",
                                    list(fixed.x = FALSE)),
  growth = list("growth", GROWTH, "Demo.growth", list()),
  growth_basic = list("growth", GROWTH_BASIC, "Demo.growth", list()),
  nonrecursive = list("sem", "y1 ~ y5 + x1\n y5 ~ y1 + x2", "PoliticalDemocracy", list()),
  hs_group_residuals = list("cfa", HS3, HS, list(
    group = "school", group.equal = c("loadings", "intercepts", "residuals"))),
  hs_group_lv_variances = list("cfa", HS3, HS, list(
    group = "school", group.equal = c("loadings", "lv.variances", "lv.covariances"))),
  hs_group_partial = list("cfa", HS3, HS, list(
    group = "school", group.equal = "loadings", group.partial = "visual=~x2")),
  hs_free_marker = list("cfa", paste("visual =~ NA*x1 + x2 + x3", "visual ~~ 1*visual",
                                     "textual =~ x4 + x5 + x6", sep = "\n "), HS, list()),
  hs_user_intercepts = list("cfa", paste("visual =~ x1 + x2 + x3", "x1 ~ label(\"m1\")*1",
                                         "visual ~ 0*1", sep = "\n "), HS, list()),
  hs_observed_on_latent = list("sem", "visual =~ x1 + x2 + x3\n x4 ~ visual + ageyr", HS,
                               list()),
  twolevel = list("sem", TWOLEVEL, "Demo.twolevel", list(cluster = "cluster")),
  twolevel_simple = list("sem", TWOLEVEL_SIMPLE, "Demo.twolevel", list(cluster = "cluster"))
)

FIT_MEASURES <- c("npar", "logl", "unrestricted.logl", "chisq", "df", "pvalue",
                  "baseline.chisq", "baseline.df", "cfi", "tli", "rmsea", "rmsea.ci.lower",
                  "rmsea.ci.upper", "rmsea.pvalue", "srmr", "aic", "bic", "bic2")
FIT_MEASURES_IF_PRESENT <- c("srmr_within", "srmr_between")   # two-level fits

# ---------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------

num_or_null <- function(x) if (is.null(x) || length(x) == 0 || !is.finite(x)) NULL else
  unname(as.numeric(x))

snake_options <- function(options) {
  out <- list()
  for (name in names(options)) {
    value <- options[[name]]
    key <- gsub(".", "_", name, fixed = TRUE)
    out[[key]] <- if (name %in% c("group.equal", "group.partial")) I(value) else value
  }
  if (length(out) == 0) setNames(list(), character(0)) else out
}

r_call <- function(fun, data_name, options) {
  args <- c("model", if (grepl("/", data_name)) sprintf('data = read.csv("%s")', data_name)
            else sprintf("data = %s", data_name))
  for (name in names(options)) {
    args <- c(args, sprintf("%s = %s", name, paste(deparse(options[[name]]), collapse = "")))
  }
  sprintf("%s(%s)", fun, paste(args, collapse = ", "))
}

# A named vector or matrix as {variables, values} (matrices as a list of rows).
moment <- function(x) {
  if (is.matrix(x)) {
    m <- unclass(x)
    list(variables = I(rownames(m)), values = unname(m))
  } else {
    list(variables = I(names(x)), values = I(unname(as.numeric(x))))
  }
}

# fitted()/sampstat output as a list of blocks in lavaan's block order.
per_block <- function(obj, fit) {
  ngroups <- lavInspect(fit, "ngroups")
  nlevels <- lavInspect(fit, "nlevels")
  group_labels <- lavInspect(fit, "group.label")
  level_labels <- lavInspect(fit, "level.label")
  nblocks <- ngroups * nlevels
  blocks <- if (nblocks == 1) list(obj) else obj
  stopifnot(length(blocks) == nblocks)
  lapply(seq_len(nblocks), function(b) {
    g <- (b - 1) %/% nlevels + 1
    l <- (b - 1) %% nlevels + 1
    entry <- list(block = b, group = g,
                  group_label = if (length(group_labels)) group_labels[g] else NULL,
                  level = l,
                  level_label = if (nlevels > 1) level_labels[l] else NULL)
    for (what in names(blocks[[b]])) {
      if (!is.null(blocks[[b]][[what]])) entry[[what]] <- moment(blocks[[b]][[what]])
    }
    entry
  })
}

# Rows of a data frame as a list of named lists (NA -> null when written).
rows <- function(df) {
  lapply(seq_len(nrow(df)), function(i) {
    row <- lapply(df[i, , drop = FALSE], function(v) {
      v <- if (is.factor(v)) as.character(v) else v
      if (length(v) == 0 || (is.numeric(v) && !is.finite(v)) || is.na(v)) NA else unname(v)
    })
    row
  })
}

fit_once <- function(fun, model, data, options) {
  do.call(fun, c(list(model = model, data = data), options))
}

# Normal log-likelihood of the observed exogenous covariates alone, saturated (their ML
# sample moments).  lavaan 0.6's logl with fixed.x = TRUE equals the fixed.x = FALSE logl
# minus this: it is the log-likelihood of the outcomes given the covariates.
x_marginal_logl <- function(fit) {
  ov_x <- lavNames(fit, "ov.x")
  if (length(ov_x) == 0 || lavInspect(fit, "nlevels") > 1) return(NULL)
  samp <- lavInspect(fit, "sampstat")
  if (lavInspect(fit, "ngroups") == 1) samp <- list(samp)
  nobs <- lavInspect(fit, "nobs")
  total <- 0
  for (g in seq_along(samp)) {
    S <- unclass(samp[[g]]$cov)[ov_x, ov_x, drop = FALSE]
    p <- length(ov_x)
    total <- total - nobs[g] / 2 * (p * log(2 * pi) + as.numeric(determinant(S)$modulus) + p)
  }
  total
}

# Normal log-likelihood of all observed variables (outcomes and covariates) at lavaan's
# implied moments (fitted(fit), which holds the covariates at their sample moments), from
# the sample moments; single level, complete data.  For fixed.x = TRUE fits it equals
# lavaan's logl + x_marginal_logl(fit).
joint_logl <- function(fit) {
  samp <- lavInspect(fit, "sampstat")
  impl <- fitted(fit)
  if (lavInspect(fit, "ngroups") == 1) { samp <- list(samp); impl <- list(impl) }
  nobs <- lavInspect(fit, "nobs")
  total <- 0
  for (g in seq_along(samp)) {
    S <- unclass(samp[[g]]$cov); vars <- rownames(S)
    Sigma <- unclass(impl[[g]]$cov)[vars, vars]
    # Without a mean structure the means are saturated: mu = ybar.
    d <- if (is.null(impl[[g]]$mean)) rep(0, length(vars)) else
      as.numeric(samp[[g]]$mean[vars]) - as.numeric(impl[[g]]$mean[vars])
    Si <- solve(Sigma)
    total <- total - nobs[g] / 2 * (length(vars) * log(2 * pi) +
      as.numeric(determinant(Sigma)$modulus) + sum(Si * S) + sum(d * (Si %*% d)))
  }
  total
}

# ---------------------------------------------------------------------------------------
# Fit and write
# ---------------------------------------------------------------------------------------

summary_rows <- list()

# Rscript tests/reference/lavaan_fits.R [case ...]: all cases, or only the ones named
selected <- commandArgs(trailingOnly = TRUE)
for (case in if (length(selected)) selected else names(CASES)) {
  spec <- CASES[[case]]
  fun <- spec[[1]]; model <- spec[[2]]; data_name <- spec[[3]]; options <- spec[[4]]
  data <- datasets[[data_name]]

  fit <- fit_once(fun, model, data, options)
  stopifnot(lavInspect(fit, "converged"))
  times <- vapply(1:7, function(i) system.time(fit_once(fun, model, data, options))[["elapsed"]],
                  numeric(1))

  fm_all <- fitMeasures(fit)
  measures <- c(FIT_MEASURES, intersect(FIT_MEASURES_IF_PRESENT, names(fm_all)))
  fit_measures <- lapply(measures, function(m) if (m %in% names(fm_all))
    num_or_null(fm_all[[m]]) else NULL)
  names(fit_measures) <- measures

  # parameterEstimates with every row, so that it lines up with parTable row by row.
  pt <- parTable(fit)
  if (is.null(pt$group)) pt$group <- ifelse(pt$block > 0, 1L, 0L)
  if (is.null(pt$level)) pt$level <- ifelse(pt$block > 0, 1L, 0L)
  pe <- parameterEstimates(fit, remove.system.eq = FALSE, remove.eq = FALSE,
                           remove.ineq = FALSE, remove.def = FALSE, remove.nonfree = FALSE)
  stopifnot(nrow(pe) == nrow(pt), all(pe$lhs == pt$lhs), all(pe$op == pt$op),
            all(pe$rhs == pt$rhs))
  pe_out <- data.frame(
    lhs = pt$lhs, op = pt$op, rhs = pt$rhs, block = pt$block, group = pt$group,
    level = pt$level,
    label = pt$label, plabel = pt$plabel, user = pt$user, free = pt$free, exo = pt$exo,
    est = pe$est, se = pe$se, z = pe$z, pvalue = pe$pvalue, ci.lower = pe$ci.lower,
    ci.upper = pe$ci.upper, stringsAsFactors = FALSE)

  std <- tryCatch({
    ss <- standardizedSolution(fit, remove.eq = FALSE, remove.ineq = FALSE,
                               remove.def = FALSE)
    stopifnot(nrow(ss) == nrow(pt), all(ss$lhs == pt$lhs), all(ss$op == pt$op))
    rows(data.frame(lhs = ss$lhs, op = ss$op, rhs = ss$rhs, block = pt$block,
                    group = pt$group, level = pt$level, est.std = ss$est.std, se = ss$se,
                    stringsAsFactors = FALSE))
  }, error = function(e) { message(case, ": standardizedSolution failed: ", conditionMessage(e)); NULL })

  mi <- tryCatch({
    m <- modindices(fit, sort. = TRUE)
    keep <- intersect(c("lhs", "op", "rhs", "block", "group", "level", "mi", "epc",
                        "sepc.lv", "sepc.all", "sepc.nox"), names(m))
    m <- as.data.frame(m)[, keep, drop = FALSE]
    if (is.null(m$group)) m$group <- rep(1L, nrow(m))
    rows(m)
  }, error = function(e) { message(case, ": modindices failed: ", conditionMessage(e)); NULL })

  casewise <- tryCatch(sum(lavInspect(fit, "loglik.casewise")), error = function(e) NULL)
  logl <- num_or_null(fm_all[["logl"]])
  x_logl <- x_marginal_logl(fit)
  joint <- if (is.null(x_logl)) NULL else joint_logl(fit)

  result <- list(
    case = case,
    lavaan_version = as.character(packageVersion("lavaan")),
    r_version = R.version.string,
    `function` = fun,
    model = model,
    options = snake_options(options),
    r_call = r_call(fun, data_name, options),
    data = data_name,
    nobs = sum(lavInspect(fit, "nobs")),
    nobs_group = I(as.integer(lavInspect(fit, "nobs"))),
    ntotal = lavInspect(fit, "ntotal"),
    group_labels = I(lavInspect(fit, "group.label")),
    nclusters = if (lavInspect(fit, "nlevels") > 1) lavInspect(fit, "nclusters") else NULL,
    logl = logl,
    npar = num_or_null(fm_all[["npar"]]),
    n_free = max(pt$free),
    n_eq_constraints = sum(pt$op == "=="),
    ov_x = I(lavNames(fit, "ov.x")),
    logl_x_marginal = x_logl,
    logl_joint = joint,
    loglik_casewise_sum = casewise,
    converged = lavInspect(fit, "converged"),
    iterations = lavInspect(fit, "iterations"),
    optimizer = fit@Options$optim.method,
    fit_measures = fit_measures,
    parameter_estimates = rows(pe_out),
    standardized = std,
    modindices = mi,
    implied = per_block(fitted(fit), fit),
    sample = per_block(lavInspect(fit, "sampstat"), fit),
    timing_seconds = median(times),
    timing_runs = I(round(times, 4))
  )

  if (case == "hs_constraints") {
    free_fit <- fit_once(fun, CONSTRAINTS_FREE, data, options)
    free_pe <- parameterEstimates(free_fit)
    get_est <- function(p, lab) p$est[p$label == lab][1]
    est <- function(lab) get_est(pe_out, lab)
    result$constraints <- list(
      list(constraint = "l2 == l3", value = est("l2") - est("l3"), binds = TRUE,
           unconstrained = list(l2 = get_est(free_pe, "l2"), l3 = get_est(free_pe, "l3"))),
      list(constraint = "v3 > 0.9", value = est("v3") - 0.9,
           binds = abs(est("v3") - 0.9) < 1e-6,
           unconstrained = list(v3 = get_est(free_pe, "v3"))))
    result$unconstrained_logl <- num_or_null(fitMeasures(free_fit, "logl"))
  }

  json <- toJSON(result, auto_unbox = TRUE, digits = NA, na = "null", null = "null",
                 pretty = TRUE, matrix = "rowmajor")
  writeLines(json, file.path(out_dir, paste0(case, ".json")))

  fmt <- function(x) if (is.null(x)) "NA" else format(x, digits = 10)
  summary_rows[[case]] <- sprintf("%-28s logl %-16s npar %-4s chisq %-14s df %-4s time %.4f s",
                                  case, fmt(logl), fmt(fit_measures$npar),
                                  fmt(fit_measures$chisq), fmt(fit_measures$df), median(times))
  cat(summary_rows[[case]], "\n")
}

cat("lavaan", as.character(packageVersion("lavaan")), "--", R.version.string, "\n")
