# lavaan side of `make bench`: Rscript benchmarks/peers/lavaan.R <case> [repeats]
# (run from the repository root). The model and call are those of the lavaan reference fit,
# tests/fixtures/lavaan/<case>.json; a CSV the call reads is read before the clock starts.
suppressMessages(library(lavaan))
here <- dirname(sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE)))
source(file.path(here, "timing.R"))
a <- peer_args()

ref <- jsonlite::fromJSON(file.path("tests/fixtures/lavaan", paste0(a$case, ".json")))
model <- ref$model
read_call <- regmatches(ref$r_call, regexpr("read\\.csv\\([^)]*\\)", ref$r_call))
fit_text <- ref$r_call
if (length(read_call) == 1) {
  case_data <- eval(parse(text = read_call))
  fit_text <- sub(read_call, "case_data", fit_text, fixed = TRUE)
}
timed <- time_fit(parse(text = fit_text)[[1]], a$repeats)
report(a$case, "lavaan", timed, fitMeasures(timed$fit, "logl"))
