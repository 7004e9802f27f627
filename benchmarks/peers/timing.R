# Shared by the peer timing scripts: time only the fitting call, on a monotonic clock.
#
# time_fit() evaluates the call `repeats` times (once more is skipped when a fit took longer
# than `long` seconds) and returns the last fit and every elapsed time; report() prints one
# JSON line that benchmarks/run.py reads: seconds (all), median, logLik, versions.

time_fit <- function(fit_call, repeats, long = 30, env = parent.frame()) {
  seconds <- numeric(0)
  for (i in seq_len(repeats)) {
    started <- bench::hires_time()
    fit <- eval(fit_call, env)
    seconds <- c(seconds, as.numeric(bench::hires_time() - started))
    if (seconds[i] > long) break
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

