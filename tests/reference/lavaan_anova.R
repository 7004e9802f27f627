# Likelihood-ratio tests of nested SEMs with lavaan's anova() (lavTestLRT), for
# semgalamm.anova() on SemFit results (tests/test_results_api.py).
#
# How to run (from the repository root; needs R with lavaan and jsonlite):
#
#     Rscript tests/reference/lavaan_anova.R
#
# It reads the shipped CSV files (as tests/reference/lavaan_fits.R fits them) and writes
# tests/fixtures/lavaan_anova.json: per case the models (function, model string, options in
# semgalamm's snake-case names, npar, logl and the names of vcov()), the order they were given
# in, and lavaan's table with the
# rows in lavaan's order (ascending model degrees of freedom): Df, AIC, BIC, Chisq,
# Chisq diff, RMSEA (of the difference), Df diff, Pr(>Chisq); null where lavaan prints
# nothing.

suppressPackageStartupMessages({
  library(lavaan)
  library(jsonlite)
})

data_dir <- file.path("semgalamm", "datasets", "data")
read_shipped <- function(name) read.csv(file.path(data_dir, paste0(name, ".csv")))
hs <- read_shipped("HolzingerSwineford1939")
hs$school <- factor(hs$school, levels = levels(HolzingerSwineford1939$school))
missing_csv <- file.path("tests", "data", "HolzingerSwineford1939_missing.csv")
hs_missing <- read.csv(missing_csv)
data <- list(
  HolzingerSwineford1939 = hs,
  PoliticalDemocracy = read_shipped("PoliticalDemocracy"),
  Demo.twolevel = read_shipped("Demo.twolevel")
)
data[[missing_csv]] <- hs_missing

HS3 <- "visual =~ x1 + x2 + x3\n textual =~ x4 + x5 + x6\n speed =~ x7 + x8 + x9"
POLDEM <- paste(
  "ind60 =~ x1 + x2 + x3",
  "dem60 =~ y1 + %s + %s + %s",
  "dem65 =~ y5 + %s + %s + %s",
  "dem60 ~ ind60",
  "dem65 ~ ind60 + dem60",
  "y1 ~~ y5",
  "y2 ~~ y4 + y6",
  "y3 ~~ y7",
  "y4 ~~ y8",
  "y6 ~~ y8", sep = "\n ")
COVARIATES <- paste(HS3, "visual ~ ageyr + sex", "textual ~ ageyr + %s", "speed ~ ageyr",
                    sep = "\n ")
TWOLEVEL <- "level: 1\n fw =~ y1 + %s + %s\n level: 2\n fb =~ y1 + %s + %s"

# Each model: function, model string, options (R names; translated for the fixture).
model <- function(fun, text, ...) list(fun = fun, model = text, options = list(...))

CASES <- list(
  hs_invariance = list(
    data = "HolzingerSwineford1939",
    models = list(  # given out of order: lavaan sorts by df
      scalar = model("cfa", HS3, group = "school",
                     group.equal = c("loadings", "intercepts")),
      configural = model("cfa", HS3, group = "school"),
      metric = model("cfa", HS3, group = "school", group.equal = "loadings"))),
  hs_orthogonal = list(
    data = "HolzingerSwineford1939",
    models = list(
      oblique = model("cfa", HS3),
      orthogonal = model("cfa", HS3, orthogonal = TRUE))),
  poldem_equal_loadings = list(
    data = "PoliticalDemocracy",
    models = list(
      free = model("sem", sprintf(POLDEM, "y2", "y3", "y4", "y6", "y7", "y8")),
      equal = model("sem", sprintf(POLDEM, "a*y2", "b*y3", "c*y4", "a*y6", "b*y7", "c*y8")))),
  hs_covariates = list(
    data = "HolzingerSwineford1939",
    models = list(
      full = model("sem", sprintf(COVARIATES, "sex")),
      restricted = model("sem", sprintf(COVARIATES, "0*sex")))),
  hs_fiml = list(
    data = missing_csv,
    models = list(
      oblique = model("cfa", HS3, missing = "ml"),
      orthogonal = model("cfa", HS3, missing = "ml", orthogonal = TRUE))),
  twolevel_cross_level = list(
    data = "Demo.twolevel",
    models = list(
      free = model("sem", sprintf(TWOLEVEL, "y2", "y3", "y2", "y3"), cluster = "cluster"),
      equal = model("sem", sprintf(TWOLEVEL, "a*y2", "b*y3", "a*y2", "b*y3"),
                    cluster = "cluster")))
)

python_names <- c(group.equal = "group_equal")

fit_model <- function(m, frame) {
  do.call(m$fun, c(list(model = m$model, data = frame), m$options))
}

number <- function(x) if (is.na(x)) NULL else unname(x)

out <- list(lavaan_version = as.character(packageVersion("lavaan")),
            r_version = paste(R.version$major, R.version$minor, sep = "."), cases = list())
for (case in names(CASES)) {
  spec <- CASES[[case]]
  frame <- data[[spec$data]]
  fits <- lapply(spec$models, fit_model, frame = frame)
  table <- do.call(lavTestLRT, c(unname(fits), list(model.names = names(fits))))
  rows <- lapply(rownames(table), function(name) {
    row <- table[name, ]
    list(name = name, Df = number(row[["Df"]]), AIC = number(row[["AIC"]]),
         BIC = number(row[["BIC"]]), Chisq = number(row[["Chisq"]]),
         `Chisq diff` = number(row[["Chisq diff"]]), RMSEA = number(row[["RMSEA"]]),
         `Df diff` = number(row[["Df diff"]]), `Pr(>Chisq)` = number(row[["Pr(>Chisq)"]]))
  })
  models <- lapply(names(spec$models), function(name) {
    m <- spec$models[[name]]
    options <- m$options
    renamed <- ifelse(names(options) %in% names(python_names),
                      python_names[names(options)], names(options))
    names(options) <- renamed
    if (!is.null(options$group_equal)) options$group_equal <- as.list(options$group_equal)
    list(name = name, `function` = m$fun, model = m$model, options = options,
         npar = unname(fitMeasures(fits[[name]], "npar")),
         logl = unname(fitMeasures(fits[[name]], "logl")),
         vcov_names = colnames(vcov(fits[[name]])))
  })
  out$cases[[case]] <- list(data = spec$data, models = models, table = rows)
  cat(case, "\n")
  print(table)
}

writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE, null = "null"),
           file.path("tests", "fixtures", "lavaan_anova.json"))
