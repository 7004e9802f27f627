# Reference values for tests/design/test_smooths.py, written to tests/fixtures/mgcv_smooths.json.
#
# For each case: mgcv's smoothCon(..., absorb.cons = TRUE) model matrix (a subset of rows) and
# penalties, smooth2random(type = 2) fixed and random blocks (same rows), PredictMat at 20 new
# points, and (at the same rows) penalized least squares fitted values of y on [1, Xf, Zr] with ridge 1/sigma^2 on
# each random block's coefficients (a check that does not depend on column signs).
#
# Run from the repository root:  Rscript tests/reference/mgcv_smooths.R
suppressPackageStartupMessages({
  library(mgcv)
  library(jsonlite)
})

ref_dir <- "/work/shared/reference/data/derived"
read_ref <- function(f) read.csv(file.path(ref_dir, f), stringsAsFactors = FALSE)

set.seed(20240611)
syn <- data.frame(x = runif(120), z = runif(120), w = rnorm(120, 1, 0.5))
syn$x[1:30] <- syn$x[31:60] # ties: only 90 unique x values
syn$g <- factor(sample(c("a", "b", "c"), 120, replace = TRUE))
syn$y <- sin(2 * pi * syn$x) + cos(3 * syn$z) + rnorm(120, 0, 0.3)

cog <- read_ref("t_gamm4_s.csv"); cog$y <- cog$y.1
cog_t2 <- read_ref("t_gamm4_t2.csv"); cog_t2$y <- cog_t2$y.1
cog_fx <- read_ref("t_gamm4_s_fx_ri.csv"); cog_fx$y <- cog_fx$y.1
sim1 <- read_ref("t_gamsim1_s_t2.csv")
sim4 <- read_ref("t_gamsim4_s_by_num.csv"); sim4$fac <- factor(sim4$fac)
semi <- read_ref("v_semi_gamm_gaussian.csv")

cases <- list(
  list(name = "tp_gamm4_s", data = "t_gamm4_s.csv", df = cog, term = quote(s(x)), sigma = 1.9),
  list(name = "cr_gamm4_s", data = "t_gamm4_s.csv", df = cog, term = quote(s(x, bs = "cr")),
       sigma = 1.5),
  list(name = "t2_gamm4_t2", data = "t_gamm4_t2.csv", df = cog_t2, term = quote(t2(x)), sigma = 1.7),
  list(name = "tp_fx", data = "t_gamm4_s_fx_ri.csv", df = cog_fx, term = quote(s(x, fx = TRUE)),
       sigma = NULL, keep = "id"),
  list(name = "tp_gamsim1_x1", data = "t_gamsim1_s_t2.csv", df = sim1, term = quote(s(x1)),
       sigma = 2.0),
  list(name = "t2_gamsim1_x2", data = "t_gamsim1_s_t2.csv", df = sim1, term = quote(t2(x2)),
       sigma = 0.8),
  list(name = "tp_by_num", data = "t_gamsim4_s_by_num.csv", df = sim4,
       term = quote(s(x0, by = x2)), sigma = 3.0),
  list(name = "t2_by_num", data = "t_gamsim4_s_by_num.csv", df = sim4,
       term = quote(t2(x0, by = x2)), sigma = 1.2),
  list(name = "tp_by_fac", data = "t_gamsim4_s_by_num.csv", df = sim4,
       term = quote(s(x0, by = fac)), sigma = 2.5),
  list(name = "cr_by_fac_k5", data = "t_gamsim4_s_by_num.csv", df = sim4,
       term = quote(s(x1, bs = "cr", k = 5, by = fac)), sigma = 1.1),
  list(name = "tp_semi", data = "v_semi_gamm_gaussian.csv", df = semi, term = quote(s(x)),
       sigma = 1.3),
  list(name = "tp_syn_k5", data = NULL, df = syn, term = quote(s(x, k = 5)), sigma = 0.9),
  list(name = "tp_syn_m3", data = NULL, df = syn, term = quote(s(z, m = 3)), sigma = 0.9),
  list(name = "cr_syn_k6", data = NULL, df = syn, term = quote(s(x, bs = "cr", k = 6)), sigma = 0.7),
  list(name = "tp_syn_2d", data = NULL, df = syn, term = quote(s(x, z, k = 15)), sigma = 1.4),
  list(name = "tp_syn_2d_default", data = NULL, df = syn, term = quote(s(x, z)), sigma = 1.4),
  list(name = "t2_syn_2d", data = NULL, df = syn, term = quote(t2(x, z)), sigma = c(1.1, 0.6, 0.4)),
  list(name = "t2_syn_2d_k4", data = NULL, df = syn, term = quote(t2(x, z, k = 4)),
       sigma = c(0.9, 0.5, 0.3)),
  list(name = "tp_syn_by_w", data = NULL, df = syn, term = quote(s(z, by = w)), sigma = 1.0),
  list(name = "t2_syn_by_g", data = NULL, df = syn, term = quote(t2(x, by = g)), sigma = 1.0),
  list(name = "t2_syn_3d_k433", data = NULL, df = syn, term = quote(t2(x, z, w, k = c(4, 3, 3))),
       sigma = c(1.0, 0.7, 0.5, 0.4, 0.3, 0.2, 0.1)),
  list(name = "t2_syn_tp_cr", data = NULL, df = syn, term = quote(t2(x, z, bs = c("tp", "cr"))),
       sigma = c(1.0, 0.6, 0.4)),
  list(name = "tp_syn_k4_by_w", data = NULL, df = syn, term = quote(s(x, k = 4, by = w)),
       sigma = 1.2)
)

pls_fit <- function(y, Xf, rand, sigma) {
  # minimise ||y - A c||^2 + sum_j ||b_j||^2 / sigma_j^2 with A = [1, Xf, Zr_1, ...]
  A <- cbind(1, Xf)
  pen <- rep(0, ncol(A))
  for (j in seq_along(rand)) {
    A <- cbind(A, rand[[j]])
    pen <- c(pen, rep(1 / sigma[min(j, length(sigma))]^2, ncol(rand[[j]])))
  }
  coef <- solve(crossprod(A) + diag(pen, ncol(A)), crossprod(A, y))
  as.numeric(A %*% coef)
}

rows_for <- function(n) unique(round(seq(1, n, length.out = min(n, 40))))
rows_for_xp <- function(n, p) unique(round(seq(1, n, length.out = min(n, max(40, 2 * p)))))

out <- list()
for (cs in cases) {
  df <- cs$df
  spec <- eval(cs$term)
  sml <- smoothCon(spec, data = df, absorb.cons = TRUE)
  rows <- rows_for(nrow(df))
  vars <- spec$term
  newdata <- df[sample(nrow(df), 20), , drop = FALSE]
  for (v in vars) {
    r <- range(df[[v]])
    newdata[[v]] <- r[1] + (r[2] - r[1]) * seq(-0.05, 1.05, length.out = 20)
  }
  res <- list(name = cs$name, data_file = cs$data, term = deparse(cs$term), rows = rows - 1,
              vars = vars, by = spec$by, newdata = as.list(newdata[, c(vars, if (spec$by != "NA") spec$by), drop = FALSE]),
              smooths = list())
  y <- df$y
  res$data <- as.list(df[, c(vars, if (spec$by != "NA") spec$by, cs$keep, "y"), drop = FALSE])
  for (sm in sml) {
    ra <- smooth2random(sm, names(df), type = 2)
    pm <- PredictMat(sm, newdata)
    ent <- list(label = sm$label, X = sm$X[rows, , drop = FALSE], S = unname(sm$S),
                rank = sm$rank, Xf = ra$Xf[rows, , drop = FALSE],
                rand = lapply(unname(ra$rand), function(z) as.matrix(z)[rows, , drop = FALSE]),
                predict = pm, colmeans = colMeans(sm$X))
    if (!is.null(sm$Xp)) { # enough rows to pin down the coefficients of a wide t2 basis
      ent$xp_rows <- rows_for_xp(nrow(df), ncol(sm$Xp)) - 1
      ent$Xp <- sm$Xp[ent$xp_rows + 1, , drop = FALSE]
    }
    if (!is.null(cs$sigma)) {
      ent$sigma <- cs$sigma
      ent$pls_fitted <- pls_fit(y, ra$Xf, lapply(ra$rand, as.matrix), cs$sigma)[rows]
    } else {
      ent$ls_fitted <- as.numeric(lm.fit(cbind(1, ra$Xf), y)$fitted.values)[rows]
    }
    res$smooths[[length(res$smooths) + 1]] <- ent
  }
  out[[cs$name]] <- res
}

writeLines(toJSON(out, digits = I(13), matrix = "rowmajor", auto_unbox = TRUE, null = "null"),
           "tests/fixtures/mgcv_smooths.json")
cat("wrote", length(out), "cases\n")
