# lme4 side of `make bench`: Rscript benchmarks/peers/lme4.R <case> [repeats] [csv]
# (run from the repository root; the simulated cases read the CSV benchmarks/run.py wrote).
suppressMessages(library(lme4))
here <- dirname(sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE)))
source(file.path(here, "timing.R"))
a <- peer_args()

data("sleepstudy", "cbpp", "grouseticks", "VerbAgg", "InstEval", package = "lme4")
grouseticks$cHEIGHT <- grouseticks$HEIGHT - mean(grouseticks$HEIGHT)
VerbAgg$r2 <- as.integer(VerbAgg$r2 == "Y")
if (!is.na(a$csv)) simulated <- read.csv(a$csv)

calls <- list(
  sleepstudy_slopes = quote(lmer(Reaction ~ Days + (Days | Subject), sleepstudy,
                                 REML = FALSE)),
  cbpp_trials = quote(glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp,
                            family = binomial)),
  grouseticks_poisson = quote(glmer(TICKS ~ YEAR + cHEIGHT + (1 | BROOD) + (1 | LOCATION),
                                    grouseticks, family = poisson)),
  verbagg_crossed = quote(glmer(r2 ~ Anger + Gender + btype + situ + (1 | id) + (1 | item),
                                VerbAgg, family = binomial)),
  insteval = quote(lmer(y ~ service + (1 | s) + (1 | d) + (1 | dept), InstEval,
                        REML = FALSE)),
  crossed_gaussian = quote(lmer(y ~ x + (1 | f1) + (1 | f2) + (1 | f3), simulated,
                                REML = FALSE)),
  crossed_binomial = quote(glmer(y ~ x + (1 | f1) + (1 | f2) + (1 | f3), simulated,
                                 family = binomial))
)
if (!a$case %in% names(calls)) stop("unknown case ", a$case, "; known: ",
                                    paste(names(calls), collapse = ", "))
timed <- time_fit(calls[[a$case]], a$repeats)
report(a$case, "lme4", timed, logLik(timed$fit))
