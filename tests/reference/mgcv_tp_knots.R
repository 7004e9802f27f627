# A thin plate smooth with more unique points (3000) than mgcv's 2000 knots: mgcv draws the
# knots with set.seed(1); sample(). Run from the repository root:
#   Rscript tests/reference/mgcv_tp_knots.R
suppressMessages(library(mgcv))
set.seed(3)
x <- round(runif(3000), 6)
x <- c(x, x[1:500])
dat <- data.frame(x = x)
sm <- smoothCon(s(x, k = 6), data = dat, absorb.cons = TRUE)[[1]]
write.csv(dat, "tests/data/mgcv_tp_knots.csv", row.names = FALSE)
rows <- c(1, 17, 400, 3100, 3500)
writeLines(jsonlite::toJSON(list(rows = rows, X = sm$X[rows, ], S = sm$S[[1]],
                                 mgcv = as.character(packageVersion("mgcv"))), digits = 15),
           "tests/fixtures/mgcv_tp_knots.json")
