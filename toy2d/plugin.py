"""The 2-D toy tier's registrations (entry point `r3bench.plugins`): MLP configuration and toy data sets (Appendix E)."""
from toy2d import data, models  # noqa: F401  (importing registers them)
