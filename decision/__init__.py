"""The per-check decision: what a result means (verdict), what is accepted (waivers, silences),
and what the policy allows over the check's remembered record (soft/hard, flapping, budget, alerts)."""
