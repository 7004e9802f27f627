# Shared by the peer timing scripts: time only the fitting call, on a monotonic clock.
#
# time_fit() evaluates the call `repeats` times (at least `quick_repeats` times when the first
# fit took under a second; once only when it took over `long` seconds) and returns the last fit
# and every elapsed time (benchmarks/run.py times ours by the same rule); report() prints one
# JSON line that benchmarks/run.py reads: seconds (all), median, logLik, versions.

time_fit <- function(fit_call, repeats, long = 30, quick_repeats = 7, env = parent.frame()) {
  seconds <- numeric(0)
  while (length(seconds) < repeats) {
    started <- bench::hires_time()
    fit <- eval(fit_call, env)
    seconds <- c(seconds, as.numeric(bench::hires_time() - started))
    if (seconds[1] > long) break
    if (seconds[1] < 1) repeats <- max(repeats, quick_repeats)
  }
  list(fit = fit, seconds = seconds)
}

report <- function(case, package, timed, loglik) {
  out <- list(
    case = case, package = package,
    version = as.character(packageVersion(package)),
    R = R.version.string,
    seconds = timed$seconds, median = stats::median(timed$seconds),
    logLik = as.numeric(loglik)
  )
  cat(jsonlite::toJSON(out, auto_unbox = TRUE, digits = NA), "\n", sep = "")
}

# Command line: <case> [repeats] [csv]; repeats defaults to 3.
peer_args <- function() {
  args <- commandArgs(trailingOnly = TRUE)
  list(case = args[1], repeats = if (length(args) > 1) as.integer(args[2]) else 3L,
       csv = if (length(args) > 2) args[3] else NA_character_)
}

