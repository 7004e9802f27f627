# Writes benchmarks/data/InstEval.csv.gz from lme4::InstEval (73,421 lecture ratings), the
# columns the benchmark model y ~ service + (1 | s) + (1 | d) + (1 | dept) uses.
# Run from the repository root: Rscript benchmarks/data/insteval.R
# Factors are written as their labels; service's levels are "0" < "1" (treatment baseline 0).
data("InstEval", package = "lme4")
columns <- InstEval[, c("y", "service", "s", "d", "dept")]
out <- gzfile("benchmarks/data/InstEval.csv.gz", "w")
write.csv(columns, out, row.names = FALSE)
close(out)
cat(sprintf("wrote %d rows (lme4 %s)\n", nrow(columns), packageVersion("lme4")))
