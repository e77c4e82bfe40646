"""Telling a human: what an alert says (message), the channels that carry it (channels/, channel),
delivery with retries, fallback and a spool (delivery, spool), the run's alerts (dispatch), and the
heartbeat. Nothing here decides whether to alert: decision/ did."""
