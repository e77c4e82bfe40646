"""The audit trail of a run: its two report files (files), what goes into the HTML (html) and the
JUnit XML (junit), the verdict count that becomes the exit status (tally), and the summary the
operator reads first (summary). Generated reports are written to `[reports] dir`, by default this
folder (they are not tracked: see .gitignore)."""
