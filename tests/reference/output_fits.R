# Reference numbers for the output layer (tests/test_output_*.py): lme4's conditional
# variances of the random effects (ranef(condVar = TRUE), what dotplot() draws as intervals),
# the correlation of the fixed effects and the REML criterion that print(summary()) shows.
#
# How to run (from the repository root; needs R with lme4 and jsonlite):
#
#     Rscript tests/reference/output_fits.R
#
# It reads tests/data/{sleepstudy,cbpp}.csv and writes tests/fixtures/output.json: one object
# per case with
#   call         the R call
#   ranef        per grouping factor: level names, term names, conditional modes (levels x terms)
#   condsd       sqrt of the diagonal of attr(ranef(fit, condVar = TRUE)[[g]], "postVar")
#                (levels x terms): sigma^2 times the diagonal blocks of Lambda H^-1 Lambda'
#   condcov      the off-diagonal element of each level's 2 x 2 postVar block (when k = 2)
#   corr_fixef   cov2cor(vcov(fit)) (fixed effects x fixed effects)
#   reml_crit    the REML criterion at convergence (REML fits only)
#   sigma        sigma(fit) (1 for a binomial glmer)
#   hat, cooksd  hatvalues(fit) (the diagonal of the hat matrix of the penalized system,
#                prior weights outside, PIRLS weights inside) and cooks.distance(fit): what
#                broom.mixed's augment() gives as .hat and .cooksd
#   summary      capture.output(print(summary(fit))) for comparing the layout

suppressPackageStartupMessages({
  library(lme4)
  library(jsonlite)
})

sleep <- read.csv("tests/data/sleepstudy.csv")
sleep$Subject <- factor(sleep$Subject, levels = sort(unique(sleep$Subject)))
cbpp <- read.csv("tests/data/cbpp.csv")
cbpp$herd <- factor(cbpp$herd, levels = 1:15)
cbpp$period <- factor(cbpp$period, levels = 1:4)

case <- function(call, fit) {
  re <- ranef(fit, condVar = TRUE)
  groups <- lapply(names(re), function(g) {
    frame <- re[[g]]
    pv <- attr(frame, "postVar")
    k <- dim(pv)[1]
    sds <- t(sapply(seq_len(dim(pv)[3]), function(i) sqrt(diag(pv[, , i, drop = TRUE]))))
    if (k == 1) sds <- matrix(sqrt(pv[1, 1, ]), ncol = 1)
    out <- list(group = g, levels = rownames(frame), terms = colnames(frame),
                modes = unname(as.matrix(frame)), condsd = unname(sds))
    if (k == 2) out$condcov <- pv[1, 2, ]
    out
  })
  v <- as.matrix(vcov(fit))
  out <- list(call = call, ranef = groups, corr_fixef = unname(cov2cor(v)),
              fixef_names = names(fixef(fit)), logLik = as.numeric(logLik(fit)),
              summary = capture.output(print(summary(fit))))
  out$sigma <- sigma(fit)
  out$hat <- unname(suppressWarnings(hatvalues(fit)))
  out$cooksd <- unname(suppressWarnings(cooks.distance(fit)))
  if (isREML(fit)) out$reml_crit <- unname(getME(fit, "devcomp")$cmp["REML"])
  out
}

cases <- list(
  sleepstudy_ml = case("lmer(Reaction ~ Days + (Days | Subject), sleepstudy, REML = FALSE)",
                       lmer(Reaction ~ Days + (Days | Subject), sleep, REML = FALSE)),
  sleepstudy_reml = case("lmer(Reaction ~ Days + (Days | Subject), sleepstudy)",
                         lmer(Reaction ~ Days + (Days | Subject), sleep)),
  cbpp_glmer = case(paste("glmer(cbind(incidence, size - incidence) ~ period + (1 | herd),",
                          "cbpp, binomial)"),
                    glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp,
                          binomial, control = glmerControl(tolPwrss = 1e-10)))
)
writeLines(toJSON(cases, digits = NA, auto_unbox = TRUE, pretty = TRUE),
           "tests/fixtures/output.json")
