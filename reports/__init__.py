"""Run folders -> pandas -> paper-style tables and figures (Tables 1-3, Figure 1)."""
