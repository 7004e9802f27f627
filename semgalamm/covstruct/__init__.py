"""The covariance-structure stage for wide data: the normal likelihood of Sigma(x), mu(x)
(complete data through sample moments, missing data pattern by pattern), its optimizer and the
information matrix."""
