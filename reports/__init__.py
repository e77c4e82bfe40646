"""The audit trail of a run: its two report files (files), what goes into the HTML (html) and the
JUnit XML (junit), the verdict count that becomes the exit status (tally), and the summary the
operator reads first (summary); the audit trail's pages made from the ledger (index, trail, history,
trends, prometheus) and `make verify-trail`'s walk of it (verification). This is code: reports are written to
`[reports] dir` (default /var/lib/trading-maintenance/reports, beside the suite's state)."""
