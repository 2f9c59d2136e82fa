"""Outputs that only format what the analysis computed: REPORT.md (report), figures (plots), the
terminal summary (table)."""
